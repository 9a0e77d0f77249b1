"""The life cycles of a campaign and of an enrolment (a `campaign_leads` row), in one place.

Campaign: `draft -> scheduled -> running <-> paused -> completed`; `cancelled` from any live
state; a completed campaign whose failed leads are retried reopens paused. What a person may do
in each status is `allowed_actions(status)`; `move_campaign` applies one of those actions to a
campaign row, and the runner's own moves (complete, pause on a provider's refusal) are SQL here.

Enrolment: `pending -> in_progress -> awaiting_approval -> approved -> sent`, with the exits
`skipped`, `deferred`, `failed`, `unknown` and `cancelled`. Every writer of an enrolment's status
takes its columns from one of the `*_values` functions below, so what a transition clears and
stamps (the error, the lease, the completion time) is decided once. `ENROLMENT_TRANSITIONS` lists
the moves they make; the tests hold each function to it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.sql import ColumnElement

from core.audit import record_audit
from core.campaign_shape import Step
from core.channels.base import redact_secrets
from core.errors import Conflict
from core.models import FINAL_ENROLMENT_STATUSES, Campaign, CampaignLead, CampaignStatus, EnrolmentStatus
from core.webhooks.events import EventType, campaign_ref, emit, iso_utc

# -- enrolment statuses ------------------------------------------------------------------------

# Lead statuses that still need work, now or later; a campaign with none left is complete.
OPEN_ENROLMENT_STATUSES = tuple(s.value for s in EnrolmentStatus if s not in FINAL_ENROLMENT_STATUSES)
# Lead statuses the runner claims once `next_action_at` has come.
CLAIMABLE_ENROLMENT_STATUSES = (
    EnrolmentStatus.pending.value,
    EnrolmentStatus.deferred.value,
    EnrolmentStatus.approved.value,
)
# Enrolments a reply can still stop: waiting to be claimed, or waiting for a person.
STOPPABLE_ENROLMENT_STATUSES = (
    EnrolmentStatus.pending.value,
    EnrolmentStatus.deferred.value,
    EnrolmentStatus.awaiting_approval.value,
    EnrolmentStatus.approved.value,
)
# A reviewer's rejection also ends a lead `failed`, but it is a person's decision, not an
# error: it is not retried.
REVIEWER_REJECTION = "rejected by a reviewer"

_L = EnrolmentStatus
# Every move an enrolment's status makes, from -> the statuses it may become.
ENROLMENT_TRANSITIONS: dict[EnrolmentStatus, frozenset[EnrolmentStatus]] = {
    _L.pending: frozenset({_L.in_progress, _L.sent, _L.skipped, _L.cancelled}),
    _L.deferred: frozenset({_L.in_progress, _L.sent, _L.skipped, _L.cancelled}),
    _L.approved: frozenset({_L.in_progress, _L.sent, _L.skipped, _L.cancelled}),
    # The run's outcome; a lease that expired goes back to pending (or fails out of attempts).
    _L.in_progress: frozenset({_L.pending, _L.deferred, _L.awaiting_approval, _L.sent, _L.skipped,
                               _L.failed, _L.unknown, _L.cancelled}),
    # A reviewer approves or rejects; a reply stops the sequence.
    _L.awaiting_approval: frozenset({_L.approved, _L.failed, _L.sent, _L.skipped, _L.cancelled}),
    # A send found on reconciliation: the next step, or done; or never reached: due again.
    _L.sent: frozenset(),
    _L.skipped: frozenset(),
    _L.failed: frozenset({_L.pending}),  # retried by a person
    _L.unknown: frozenset(),
    _L.cancelled: frozenset(),
}


def due_condition(now: datetime) -> ColumnElement[bool]:
    """An enrolment the runner may claim now: claimable, and its time has come."""
    return and_(
        CampaignLead.status.in_(CLAIMABLE_ENROLMENT_STATUSES),
        or_(CampaignLead.next_action_at.is_(None), CampaignLead.next_action_at <= now),
    )


def enrolments_in_lock_order(*conditions: ColumnElement[bool]) -> Any:
    """The ids of the enrolments matching `conditions`, locked in id order (on PostgreSQL).

    Bulk updates of campaign_leads from different transactions (cancel, lease renewal, recovery,
    replies) would otherwise lock rows in whatever order their scans meet them, and two of them
    could deadlock; taking the locks in one order makes them queue instead. SQLite has a single
    writer and no FOR UPDATE.
    """
    return (
        select(CampaignLead.id).where(*conditions).order_by(CampaignLead.id)
        .with_for_update(key_share=True).scalar_subquery()
    )


def move_enrolments(session: Session, values: dict[str, Any], *conditions: ColumnElement[bool]) -> int:
    """Write a transition's `values` to the enrolments matching `conditions`, locked in id order;
    returns how many moved."""
    result = session.execute(
        update(CampaignLead)
        .where(CampaignLead.id.in_(enrolments_in_lock_order(*conditions)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- enrolment transitions: the columns each one writes ---------------------------------------

ENROLLED_STATUS = EnrolmentStatus.pending


def claimed_values(worker_id: str, lease_expires_at: datetime, now: datetime) -> dict[str, Any]:
    """A due enrolment taken by a worker under a lease (one more attempt)."""
    return {"status": EnrolmentStatus.in_progress.value, "lease_owner": worker_id,
            "lease_expires_at": lease_expires_at, "attempts": CampaignLead.attempts + 1,
            "updated_at": now}


def lease_returned_values(now: datetime) -> dict[str, Any]:
    """Its worker died: the enrolment is due again at once."""
    return {"status": EnrolmentStatus.pending.value, "lease_owner": None, "lease_expires_at": None,
            "next_action_at": now, "updated_at": now}


def lease_exhausted_values(now: datetime, max_attempts: int) -> dict[str, Any]:
    """Its worker died `max_attempts` times: the enrolment fails (keeping an earlier error)."""
    return {"status": EnrolmentStatus.failed.value, "lease_owner": None, "lease_expires_at": None,
            "error": case((CampaignLead.error.is_(None),
                           f"its worker stopped {max_attempts} times while processing it"),
                          else_=CampaignLead.error),
            "completed_at": now, "updated_at": now}


def next_step_delay(steps: Sequence[Step], next_step: int) -> timedelta | None:
    """How long after a send the step `next_step` is due; None when there is no such step."""
    if next_step >= len(steps):
        return None
    return timedelta(hours=steps[next_step].delay_hours)


def after_send(
    steps: Sequence[Step], step: int, *, sent_at: datetime, now: datetime, replied: bool,
    reason: str | None = None,
) -> dict[str, Any]:
    """The enrolment once its step's message went out: the next step due after its delay, or
    `sent` for good (no further step, or the lead replied). `reason`: the status reason when done."""
    delay = next_step_delay(steps, step + 1)
    values: dict[str, Any] = {"approved_at": None, "error": None}
    if delay is not None and not replied:
        return {**values, "status": EnrolmentStatus.pending.value, "step": step + 1,
                "next_action_at": sent_at + delay, "attempts": 0,
                "status_reason": f"follow-up {step + 1} due"}
    return {**values, "status": EnrolmentStatus.sent.value, "next_action_at": None, "completed_at": now,
            "status_reason": reason}


def send_not_reached_values(now: datetime, reason: str) -> dict[str, Any]:
    """A send interrupted before the provider got it: due again at once."""
    return {"status": EnrolmentStatus.pending.value, "next_action_at": now, "status_reason": reason}


def send_unknown_values(now: datetime, reason: str) -> dict[str, Any]:
    """A send that may have gone out: for a person to check, never sent again blindly."""
    return {"status": EnrolmentStatus.unknown.value, "next_action_at": None, "completed_at": now,
            "status_reason": reason, "error": reason}


def ended_values(status: EnrolmentStatus | str, reason: str | None, now: datetime) -> dict[str, Any]:
    """A run that ended the enrolment failed, skipped or unknown; the error kept but for a skip."""
    status = EnrolmentStatus(status)
    if status not in (EnrolmentStatus.failed, EnrolmentStatus.skipped, EnrolmentStatus.unknown):
        raise ValueError(f"{status} does not end an enrolment")
    values: dict[str, Any] = {"status": status.value, "next_action_at": None, "completed_at": now}
    if status != EnrolmentStatus.skipped:
        values["error"] = reason
    return values


def approved_values(now: datetime, reviewer_id: int | None, *, edited: bool) -> dict[str, Any]:
    """A reviewer approved the draft: the runner sends it at once."""
    return {"status": EnrolmentStatus.approved.value, "approved_at": now, "next_action_at": now,
            "reviewed_by": reviewer_id, "status_reason": "approved" + (" with an edit" if edited else "")}


def rejected_values(now: datetime, reviewer_id: int | None, reason: str) -> dict[str, Any]:
    """A reviewer rejected the draft: failed, and never retried (see `REVIEWER_REJECTION`)."""
    text = f"{REVIEWER_REJECTION}: {reason}"
    return {"status": EnrolmentStatus.failed.value, "error": text, "status_reason": text,
            "approved_at": None, "next_action_at": None, "reviewed_by": reviewer_id,
            "completed_at": now}


def stopped_by_reply_values(now: datetime, *, opted_out: bool) -> dict[str, Any]:
    """The lead replied (or opted out): a sequence under way counts as sent, one not begun as skipped."""
    return {"status": case((CampaignLead.step > 0, EnrolmentStatus.sent.value),
                           else_=EnrolmentStatus.skipped.value),
            "status_reason": "opted out" if opted_out else "replied: sequence stopped",
            "next_action_at": None, "completed_at": now}


def postponed_values(until: datetime, reason: str) -> dict[str, Any]:
    """The lead is away (an out-of-office reply): its next step waits until `until`, same status."""
    return {"next_action_at": until, "status_reason": reason}


def cancelled_values(now: datetime) -> dict[str, Any]:
    """The campaign was cancelled: the lease is cleared too, so a worker still on it writes nothing."""
    return {"status": EnrolmentStatus.cancelled.value, "status_reason": "campaign cancelled",
            "next_action_at": None, "lease_owner": None, "lease_expires_at": None, "completed_at": now}


def retried_values(now: datetime, by: str) -> dict[str, Any]:
    """A person put a failed enrolment back: due at once at the step where it failed, attempts reset."""
    return {"status": EnrolmentStatus.pending.value, "attempts": 0, "error": None, "next_action_at": now,
            "completed_at": None, "lease_owner": None, "lease_expires_at": None, "updated_at": now,
            "status_reason": f"put back for a retry by {by}"}


def retryable_condition(campaign_id: int) -> list[ColumnElement[bool]]:
    """The campaign's failed enrolments a retry puts back: not the reviewer's rejections."""
    return [
        CampaignLead.campaign_id == campaign_id,
        CampaignLead.status == EnrolmentStatus.failed.value,
        or_(CampaignLead.error.is_(None), ~CampaignLead.error.startswith(REVIEWER_REJECTION)),
    ]


def write(row: CampaignLead | Campaign, values: dict[str, Any]) -> None:
    """Apply a transition's values to a row loaded in the session."""
    for key, value in values.items():
        setattr(row, key, value)


# -- campaign statuses and actions ------------------------------------------------------------


class Action(enum.StrEnum):
    """What a person may do to a campaign (the run controls draw their buttons from these)."""

    start = "start"
    schedule = "schedule"
    pause = "pause"
    resume = "resume"
    cancel = "cancel"
    retry_failed = "retry_failed"


_C = CampaignStatus
# Each status's actions and the status each leads to.
CAMPAIGN_TRANSITIONS: dict[CampaignStatus, dict[Action, CampaignStatus]] = {
    _C.draft: {Action.start: _C.running, Action.schedule: _C.scheduled, Action.cancel: _C.cancelled},
    _C.scheduled: {Action.start: _C.running, Action.schedule: _C.scheduled, Action.cancel: _C.cancelled},
    _C.running: {Action.pause: _C.paused, Action.cancel: _C.cancelled, Action.retry_failed: _C.running},
    _C.paused: {Action.resume: _C.running, Action.cancel: _C.cancelled, Action.retry_failed: _C.paused},
    # Retrying a completed campaign's failed leads reopens it paused, for a person to resume.
    _C.completed: {Action.retry_failed: _C.paused},
    _C.cancelled: {},
    _C.failed: {},
}
# How a refusal names each action: "campaign 'X' is completed: it cannot be paused".
_REFUSED_WORDS: dict[str, str] = {
    Action.start: "started",
    Action.schedule: "scheduled",
    Action.pause: "paused",
    Action.resume: "resumed",
    Action.cancel: "cancelled",
    Action.retry_failed: "given its failed leads back (only a running, paused or completed "
                         "campaign can retry them)",
}


def allowed_actions(status: CampaignStatus | str) -> frozenset[Action]:
    """The actions a person may take on a campaign in `status`."""
    return frozenset(CAMPAIGN_TRANSITIONS[CampaignStatus(status)])


def refusal(campaign: Campaign, action: Action | str) -> Conflict:
    """The error for an action the campaign's status does not allow (`action`: or its words)."""
    words = _REFUSED_WORDS.get(action, action)
    if action == Action.start and campaign.status == CampaignStatus.paused.value:
        words += " (resume it instead)"
    return Conflict(f"campaign '{campaign.name}' is {campaign.status}: it cannot be {words}")


def require_action(campaign: Campaign, action: Action) -> CampaignStatus:
    """The status `action` leads to from the campaign's; a Conflict when its status does not allow it."""
    target = CAMPAIGN_TRANSITIONS[CampaignStatus(campaign.status)].get(action)
    if target is None:
        raise refusal(campaign, action)
    return target


def move_campaign(
    campaign: Campaign, action: Action, *, now: datetime, reason: str | None = None,
    start_at: datetime | None = None,
) -> None:
    """Apply `action` to a campaign row loaded (and locked) in the caller's session.

    Starting stamps `started_at` once; resuming counts provider failures afresh (a person
    looked); cancelling ends it with who cancelled it as the reason (`reason`); a retry reopens a
    completed campaign paused with `reason`. Raises Conflict when the status does not allow it.
    """
    target = require_action(campaign, action)
    values: dict[str, Any] = {"status": target.value}
    if action == Action.start:
        values.update(status_reason=None, scheduled_at=None, started_at=campaign.started_at or now)
    elif action == Action.schedule:
        values.update(scheduled_at=start_at, status_reason=None)
    elif action == Action.resume:
        values.update(status_reason=None, scheduled_at=None, consecutive_provider_failures=0)
    elif action == Action.cancel:
        values.update(status_reason=reason, completed_at=now, scheduled_at=None)
    elif action == Action.retry_failed:
        if campaign.status != CampaignStatus.completed.value:
            return  # a running or paused campaign stays as it is
        values.update(completed_at=None, status_reason=reason)
    elif action == Action.pause:
        values.update(status_reason=reason)
    write(campaign, values)
    if action == Action.start and (session := object_session(campaign)) is not None:
        emit(session, campaign.tenant_id, EventType.campaign_started,
             {"campaign": {"id": campaign.id, "name": campaign.name}, "channel": campaign.channel,
              "started_at": iso_utc(campaign.started_at or now)}, now=now)


def hold_scheduled_start(campaign: Campaign, reason: str) -> None:
    """The runner's move when a scheduled start fails its pre-flight: back to draft, unscheduled,
    with `reason` (the failed checks) for the Campaigns page; a person fixes it and starts again."""
    if campaign.status != CampaignStatus.scheduled.value:
        raise ValueError(f"a {campaign.status} campaign has no scheduled start to hold")
    write(campaign, {"status": CampaignStatus.draft.value, "scheduled_at": None,
                     "status_reason": f"the scheduled start was held: {reason}"})


def pause_campaign_in(
    session: Session, campaign_id: int, reason: str | None,
    *, only_from: CampaignStatus = CampaignStatus.running, user_id: int | None = None,
) -> bool:
    """Pause inside the caller's transaction (the gate uses it when the budget cap is hit).

    Returns False when the campaign was not in `only_from`. Leads in flight finish; no new lead
    is claimed from a paused campaign.
    """
    if Action.pause not in allowed_actions(only_from):
        raise ValueError(f"a {only_from} campaign cannot be paused")
    reason = redact_secrets(reason) if reason else reason  # shown in the monitor: no account ids
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == only_from.value)
        .values(status=CampaignStatus.paused.value, status_reason=reason)
        .returning(Campaign.tenant_id)
    )
    tenant_id = result.scalar()
    if tenant_id is None:
        return False
    record_audit(session, tenant_id=tenant_id, user_id=user_id, action="pause",
                 entity="campaign", entity_id=campaign_id, details={"reason": reason})
    return True


def complete_finished_in(session: Session, now: datetime) -> list[tuple[int, int]]:
    """Mark running campaigns with no open lead left completed; returns (campaign, tenant) ids."""
    open_lead = exists().where(
        CampaignLead.campaign_id == Campaign.id, CampaignLead.status.in_(OPEN_ENROLMENT_STATUSES)
    )
    rows = session.execute(
        update(Campaign)
        .where(Campaign.status == CampaignStatus.running.value, ~open_lead)
        .values(status=CampaignStatus.completed.value, completed_at=now, status_reason=None)
        .returning(Campaign.id, Campaign.tenant_id)
    ).all()
    for campaign_id, tenant_id in rows:
        emit(session, tenant_id, EventType.campaign_completed,
             _completed_data(session, int(campaign_id), now), now=now)
    return [(int(r[0]), int(r[1])) for r in rows]


def _completed_data(session: Session, campaign_id: int, now: datetime) -> Any:
    def read() -> dict[str, Any]:
        counts = session.execute(
            select(CampaignLead.status, func.count(CampaignLead.id))
            .where(CampaignLead.campaign_id == campaign_id).group_by(CampaignLead.status)
        ).all()
        return {"campaign": campaign_ref(session, campaign_id), "completed_at": iso_utc(now),
                "enrolments": {status: int(count) for status, count in counts}}

    return read
