"""Statuses in the words a sales manager uses: one mapping for every page and the command line.

The database keeps `awaiting_approval` and `in_progress`; people read "waiting for review" and
"being written". A finished campaign says what happened ("completed: 0 sent, 73 failed"), never
a bare "completed" over a run in which nothing went out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from core.models import CampaignStatus, EnrolmentStatus

CAMPAIGN_STATUS_WORDS: dict[str, str] = {
    CampaignStatus.draft.value: "draft",
    CampaignStatus.scheduled.value: "scheduled",
    CampaignStatus.running.value: "running",
    CampaignStatus.paused.value: "paused",
    CampaignStatus.completed.value: "completed",
    CampaignStatus.cancelled.value: "cancelled",
    CampaignStatus.failed.value: "stopped by an error",
}

LEAD_STATUS_WORDS: dict[str, str] = {
    EnrolmentStatus.pending.value: "waiting",
    EnrolmentStatus.in_progress.value: "being written",
    EnrolmentStatus.awaiting_approval.value: "waiting for review",
    EnrolmentStatus.approved.value: "approved, to send",
    EnrolmentStatus.sent.value: "sent",
    EnrolmentStatus.skipped.value: "skipped",
    EnrolmentStatus.deferred.value: "deferred",
    EnrolmentStatus.failed.value: "failed",
    EnrolmentStatus.unknown.value: "send unconfirmed",
    EnrolmentStatus.cancelled.value: "cancelled",
}

MESSAGE_STATUS_WORDS: dict[str, str] = {
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "unknown": "send unconfirmed",
}

FINISHED_CAMPAIGN_STATUSES = (
    CampaignStatus.completed.value, CampaignStatus.cancelled.value, CampaignStatus.failed.value,
)
# The leads' outcomes a finished campaign's status line counts after the messages sent, in order.
_OUTCOME_LEAD_STATUSES = (
    EnrolmentStatus.failed.value, EnrolmentStatus.unknown.value, EnrolmentStatus.skipped.value,
    EnrolmentStatus.cancelled.value,
)


def _word(words: Mapping[str, str], status: str) -> str:
    return words.get(status, status.replace("_", " "))


def campaign_status_word(status: str) -> str:
    return _word(CAMPAIGN_STATUS_WORDS, status)


def lead_status_word(status: str) -> str:
    return _word(LEAD_STATUS_WORDS, status)


def message_status_word(status: str) -> str:
    return _word(MESSAGE_STATUS_WORDS, status)


def campaign_status_text(
    status: str, leads_by_status: Mapping[str, int] | None = None, messages_sent: int = 0
) -> str:
    """The campaign's status as a line: "running"; once finished, what happened.

    completed, {"failed": 73}, 0 -> "completed: 0 sent, 73 failed". Sent counts messages (a lead
    may have had its first touch before a cancel); the other counts are leads' outcomes. Lead
    statuses that are not outcomes (a lead still waiting) are not counted.
    """
    word = campaign_status_word(status)
    if status not in FINISHED_CAMPAIGN_STATUSES or leads_by_status is None:
        return word
    counts = [f"{messages_sent:,} sent"]
    counts += [f"{leads_by_status[s]:,} {lead_status_word(s)}" for s in _OUTCOME_LEAD_STATUSES
               if leads_by_status.get(s)]
    return f"{word}: {', '.join(counts)}"


def step_name(step: int) -> str:
    """0 -> "first touch", 2 -> "follow-up 2" (campaign_leads.step counts from 0)."""
    return "first touch" if step == 0 else f"follow-up {step}"


def due_words(when: datetime, now: datetime) -> str:
    """When something is due, as people say it: "now", "in 12 min", "in 48 h (Tue 09:00 UTC)"."""
    left = when - now
    if left <= timedelta(0):
        return "now"
    clock = f"{when:%a %H:%M} UTC"
    if left < timedelta(hours=1):
        return f"in {max(1, round(left.total_seconds() / 60))} min"
    if left < timedelta(days=7):
        return f"in {round(left.total_seconds() / 3600)} h ({clock})"
    return f"on {when:%a %d %b %H:%M} UTC"
