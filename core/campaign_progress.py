"""A campaign's progress: counts by status and step, cost, throughput, ETA and sends per minute.

A handful of GROUP BY queries over indexed columns, for the monitor and `campaigns status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from core.campaigns import load_campaign
from core.db import Database
from core.lifecycle import CLAIMABLE_ENROLMENT_STATUSES, OPEN_ENROLMENT_STATUSES
from core.models import Campaign, CampaignLead, CampaignStatus, EnrolmentStatus, Message, MessageStatus
from core.permissions import Actor, Permission
from core.status_words import campaign_status_text, due_words, step_name

THROUGHPUT_WINDOW = timedelta(minutes=5)
# The per-minute send counts the monitor draws: long enough to see a burst and the lull after it.
SENDS_SERIES_MINUTES = 15
SENT_MESSAGE_STATUSES = (MessageStatus.sent.value, MessageStatus.delivered.value)


@dataclass(frozen=True)
class StepProgress:
    """One step of a sequence (0: the first touch) across the campaign's leads."""

    step: int
    sent: int  # messages of this step sent (or delivered)
    waiting: int  # leads at this step whose time has not come (a follow-up's delay)
    due: int  # leads at this step to be worked now, or being worked
    deferred: int  # held by quiet hours, the send rate or the budget: tried again later
    in_review: int  # drafts waiting for a reviewer
    failed: int  # failed, or a send that may have gone out (unknown)
    skipped: int
    next_due_at: datetime | None  # the earliest waiting or deferred lead of this step

    @property
    def name(self) -> str:
        return step_name(self.step)

    def summary(self, now: datetime) -> str:
        """ "70 sent · 115 deferred (send window, contact cap, ...) · next try in 3 h (Tue 15:00 UTC)".

        Deferred names every rule that holds leads back: the send window (and weekdays), the
        contact caps across campaigns, public holidays, the send rate and the budget.
        """
        parts = [f"{self.sent:,} sent"]
        parts += [f"{count:,} {words}" for count, words in (
            (self.due, "going out now"),
            (self.in_review, "waiting for review"),
            (self.waiting, "waiting for their delay" if self.step else "waiting"),
            (self.deferred, "deferred (send window, contact cap, public holiday, send rate or budget)"),
            (self.failed, "failed"),
            (self.skipped, "skipped"),
        ) if count]
        if self.next_due_at is not None:
            what = f"next {self.name} due" if self.step else "next try"
            parts.append(f"{what} {due_words(self.next_due_at, now)}")
        return " · ".join(parts)


@dataclass(frozen=True)
class CampaignProgress:
    """Where a campaign stands: the figures of its monitor and of `campaigns status`."""

    campaign_id: int
    status: str
    status_reason: str | None
    leads_by_status: dict[str, int]
    messages_by_status: dict[str, int]
    enrolled: int
    open_leads: int
    cost_microusd: int
    spent_microusd: int
    budget_cap_microusd: int | None
    input_tokens: int
    output_tokens: int
    leads_per_minute: float
    eta_seconds: float | None
    started_at: datetime | None
    completed_at: datetime | None
    in_flight: int = 0
    # Per step (first touch, follow-up 1, ...): what was sent, what waits and why.
    steps: list[StepProgress] = field(default_factory=list)
    # The earliest time a waiting or deferred lead is due again (None: nothing waits for later).
    next_due_at: datetime | None = None
    # Messages sent in each of the last SENDS_SERIES_MINUTES minutes, oldest first: a burst shows.
    sends_per_minute: list[int] = field(default_factory=list)

    @property
    def sent_last_minute(self) -> int:
        return self.sends_per_minute[-1] if self.sends_per_minute else 0

    @property
    def sent_last_5_minutes(self) -> int:
        return sum(self.sends_per_minute[-5:])

    @property
    def status_text(self) -> str:
        """ "running", or once finished what happened: "completed: 0 sent, 73 failed"."""
        sent = sum(self.messages_by_status.get(s, 0) for s in SENT_MESSAGE_STATUSES)
        return campaign_status_text(self.status, self.leads_by_status, sent)


def campaign_progress(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignProgress:
    actor.require(Permission.view_campaigns)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = load_campaign(session, campaign_id)
        lead_rows = session.execute(
            select(
                CampaignLead.status,
                func.count(CampaignLead.id),
                func.coalesce(func.sum(CampaignLead.cost_microusd), 0),
                func.coalesce(func.sum(CampaignLead.input_tokens), 0),
                func.coalesce(func.sum(CampaignLead.output_tokens), 0),
            )
            .where(CampaignLead.campaign_id == campaign_id)
            .group_by(CampaignLead.status)
        ).all()
        message_rows = session.execute(
            select(Message.status, func.count(Message.id))
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.status)
        ).all()
        recent = session.scalar(
            select(func.count(CampaignLead.id)).where(
                CampaignLead.campaign_id == campaign_id,
                CampaignLead.updated_at >= now - THROUGHPUT_WINDOW,
                CampaignLead.status != EnrolmentStatus.in_progress.value,
            )
        ) or 0
        due_now = session.scalar(
            select(func.count(CampaignLead.id)).where(
                CampaignLead.campaign_id == campaign_id,
                or_(
                    CampaignLead.status == EnrolmentStatus.in_progress.value,
                    and_(CampaignLead.status.in_(CLAIMABLE_ENROLMENT_STATUSES),
                         or_(CampaignLead.next_action_at.is_(None),
                             CampaignLead.next_action_at <= now)),
                ),
            )
        ) or 0
        steps = _step_progress(session, campaign, now)
        sends = _sends_per_minute(session, campaign_id, now)
        leads_by_status = {str(r[0]): int(r[1]) for r in lead_rows}
        per_minute = recent / (THROUGHPUT_WINDOW.total_seconds() / 60)
        running = campaign.status == CampaignStatus.running.value
        return CampaignProgress(
            campaign_id=campaign.id,
            status=campaign.status,
            status_reason=campaign.status_reason,
            leads_by_status=leads_by_status,
            messages_by_status={str(r[0]): int(r[1]) for r in message_rows},
            enrolled=sum(leads_by_status.values()),
            open_leads=sum(n for s, n in leads_by_status.items() if s in OPEN_ENROLMENT_STATUSES),
            cost_microusd=int(sum(r[2] for r in lead_rows)),
            spent_microusd=campaign.spent_microusd or 0,
            budget_cap_microusd=campaign.budget_cap_microusd,
            input_tokens=int(sum(r[3] for r in lead_rows)),
            output_tokens=int(sum(r[4] for r in lead_rows)),
            leads_per_minute=round(per_minute, 2),
            # Only a running campaign gets anywhere: a paused or finished one has no ETA.
            eta_seconds=(due_now / per_minute * 60) if running and per_minute > 0 and due_now else None,
            started_at=campaign.started_at,
            completed_at=campaign.completed_at,
            in_flight=leads_by_status.get(EnrolmentStatus.in_progress.value, 0),
            steps=steps,
            next_due_at=min((st.next_due_at for st in steps if st.next_due_at), default=None),
            sends_per_minute=sends,
        )


def _step_progress(session: Session, campaign: Campaign, now: datetime) -> list[StepProgress]:
    """Every step's sent messages and its leads by what they wait for: two GROUP BY queries."""
    later = and_(CampaignLead.next_action_at.is_not(None), CampaignLead.next_action_at > now)
    rows = session.execute(
        select(CampaignLead.step, CampaignLead.status, func.count(CampaignLead.id),
               func.coalesce(func.sum(case((later, 1), else_=0)), 0),
               type_coerce(func.min(case((later, CampaignLead.next_action_at))),
                           CampaignLead.next_action_at.type))
        .where(CampaignLead.campaign_id == campaign.id)
        .group_by(CampaignLead.step, CampaignLead.status)
    ).all()
    sent = dict(session.execute(
        select(Message.step, func.count(Message.id))
        .where(Message.campaign_id == campaign.id, Message.status.in_(SENT_MESSAGE_STATUSES))
        .group_by(Message.step)
    ).all())
    counts: dict[int, dict[str, int]] = {}
    next_due: dict[int, datetime] = {}

    def add(step: int, kind: str, count: int) -> None:
        if count:
            counts.setdefault(step, {})[kind] = counts.get(step, {}).get(kind, 0) + count

    for step, status, count, later_count, earliest in rows:
        step, count, later_count = int(step), int(count), int(later_count)
        if status in (EnrolmentStatus.pending.value, EnrolmentStatus.approved.value):
            add(step, "waiting", later_count)
            add(step, "due", count - later_count)
        elif status == EnrolmentStatus.in_progress.value:
            add(step, "due", count)
        elif status == EnrolmentStatus.deferred.value:
            add(step, "deferred", count)
        elif status == EnrolmentStatus.awaiting_approval.value:
            add(step, "in_review", count)
        elif status in (EnrolmentStatus.failed.value, EnrolmentStatus.unknown.value):
            add(step, "failed", count)
        elif status == EnrolmentStatus.skipped.value:
            add(step, "skipped", count)
        else:  # sent (counted from the ledger) and cancelled
            continue
        if earliest is not None and status in CLAIMABLE_ENROLMENT_STATUSES:
            next_due[step] = min(earliest, next_due.get(step, earliest))
    total = max(len(campaign.steps or []), 1, *(s + 1 for s in (*counts, *sent)))
    return [
        StepProgress(
            step=step, sent=int(sent.get(step, 0)), next_due_at=next_due.get(step),
            **{kind: counts.get(step, {}).get(kind, 0)
               for kind in ("waiting", "due", "deferred", "in_review", "failed", "skipped")},
        )
        for step in range(total)
    ]


def _sends_per_minute(session: Session, campaign_id: int, now: datetime) -> list[int]:
    """Messages sent in each of the last SENDS_SERIES_MINUTES minutes, oldest first (one row)."""
    edges = [now - timedelta(minutes=SENDS_SERIES_MINUTES - i) for i in range(SENDS_SERIES_MINUTES + 1)]
    # The last minute is open-ended: a send stamped a moment after `now` still counts.
    buckets = [
        func.coalesce(func.sum(case((Message.sent_at >= start if end is None
                                     else and_(Message.sent_at >= start, Message.sent_at < end), 1),
                                    else_=0)), 0)
        for start, end in zip(edges[:-1], [*edges[1:-1], None], strict=True)
    ]
    row = session.execute(
        select(*buckets).where(
            Message.campaign_id == campaign_id,
            Message.status.in_(SENT_MESSAGE_STATUSES),
            Message.sent_at >= edges[0],
        )
    ).one()
    return [int(n) for n in row]
