"""The run monitor's reads: recent events, errors by reason, recently worked leads, one lead's trace.

Each is one bounded query over an indexed column (events by (campaign_id, created_at) and
(campaign_lead_id, id); campaign_leads by (campaign_id, status) and (campaign_id, updated_at)),
so the monitor stays fast on a campaign of a million leads with millions of events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from core.campaign_rules import FieldInvalid
from core.campaigns import load_campaign
from core.db import Database
from core.errors import NotFound
from core.models import (
    Campaign,
    CampaignLead,
    CampaignStatus,
    EnrolmentStatus,
    Event,
    Lead,
    LLMCall,
    Message,
)
from core.permissions import Actor, Permission
from core.tracing import otel_trace_id

# Statuses whose leads count as errors on the monitor.
ERROR_LEAD_STATUSES = (EnrolmentStatus.failed.value, EnrolmentStatus.unknown.value)
# The most events one lead's log shows: a lead runs a handful of nodes per step.
TRACE_EVENT_LIMIT = 500


@dataclass(frozen=True)
class MonitorEvent:
    id: int
    campaign_lead_id: int | None
    lead_name: str | None
    trace_id: str | None
    node: str
    level: str
    message: str
    created_at: datetime


@dataclass(frozen=True)
class ErrorReason:
    status: str
    reason: str  # the commonest wording of the group
    leads: int
    last_at: datetime | None
    wordings: int = 1  # distinct texts folded into this group (they differ only in numbers)


@dataclass(frozen=True)
class RecentEnrolment:
    campaign_lead_id: int
    lead_name: str
    status: str
    status_reason: str | None
    updated_at: datetime


@dataclass(frozen=True)
class TraceCall:
    node: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_microusd: int
    latency_ms: int
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class TraceMessage:
    step: int
    to_address: str
    subject: str | None
    body: str
    status: str
    provider: str
    error: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class EnrolmentTrace:
    """One enrolment from start to finish: its state, its node-by-node log, what it cost and sent."""

    campaign_lead_id: int
    campaign_id: int
    lead_id: int
    lead_name: str
    company: str | None
    status: str
    status_reason: str | None
    error: str | None
    step: int
    variant: str
    trace_id: str | None
    draft_subject: str | None
    draft_body: str | None
    guard: dict[str, Any]
    facts: list[dict[str, Any]]
    cost_microusd: int
    input_tokens: int
    output_tokens: int
    events: list[MonitorEvent]
    messages: list[TraceMessage]
    calls: list[TraceCall]

    @property
    def trace_ids(self) -> list[str]:
        """Every run's trace id, in the order the runs happened (a lead runs once per step)."""
        return list(dict.fromkeys(e.trace_id for e in self.events if e.trace_id))


def shown_trace_id(trace_id: str | None) -> str | None:
    """A run's trace id as a tracing backend shows its spans (32 hex digits): runs before
    OpenTelemetry stored a dashed UUID, shown as the same id the spans would carry."""
    return otel_trace_id(trace_id) if trace_id else None


def _name(first: str | None, last: str | None, lead_id: int) -> str:
    return " ".join(p for p in (first, last) if p) or f"lead {lead_id}"


def is_live(status: str) -> bool:
    """Whether the monitor should keep refreshing: the campaign runs or is about to start."""
    return status in (CampaignStatus.running.value, CampaignStatus.scheduled.value)


def campaign_to_watch(db: Database, actor: Actor) -> int | None:
    """The campaign the monitor opens on: the running or paused one most recently active (its
    latest lead change, or its start), not the newest draft. None when nothing runs or waits."""
    actor.require(Permission.view_monitor)
    last_change = (
        select(func.max(CampaignLead.updated_at))
        .where(CampaignLead.campaign_id == Campaign.id)
        .correlate(Campaign)
        .scalar_subquery()
    )
    activity = func.coalesce(last_change, Campaign.started_at, Campaign.created_at)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return session.scalar(
            select(Campaign.id)
            .where(Campaign.status.in_((CampaignStatus.running.value, CampaignStatus.paused.value)))
            .order_by(activity.desc(), Campaign.id.desc())
            .limit(1)
        )


def recent_events(
    db: Database, actor: Actor, campaign_id: int, *, limit: int = 50, errors_only: bool = False
) -> list[MonitorEvent]:
    """The campaign's newest events, newest first (at most `limit`)."""
    actor.require(Permission.view_monitor)
    query = (
        select(Event)
        .where(Event.campaign_id == campaign_id)
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(limit)
    )
    if errors_only:
        query = query.where(Event.level.in_(("error", "warning")))
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        events = list(session.scalars(query))
        enrolment_ids = {e.campaign_lead_id for e in events if e.campaign_lead_id is not None}
        names: dict[int, str] = {}
        if enrolment_ids:
            names = {
                cl_id: _name(first, last, lead_id)
                for cl_id, lead_id, first, last in session.execute(
                    select(CampaignLead.id, Lead.id, Lead.first_name, Lead.last_name)
                    .join(Lead, Lead.id == CampaignLead.lead_id)
                    .where(CampaignLead.id.in_(enrolment_ids))
                )
            }
        return [
            MonitorEvent(e.id, e.campaign_lead_id, names.get(e.campaign_lead_id or 0),
                         shown_trace_id(e.trace_id), e.node, e.level, e.message, e.created_at)
            for e in events
        ]


# Numbers, phone numbers, amounts, times and ids inside a reason: "provider error 21211 for
# +14155550123" and "... for +14155550199" are one reason to the person reading the monitor.
_VARIABLE_PART = re.compile(r"\+?\d(?:[\d.,:/-]*\d)?")
# Exact texts read from SQL before folding: the folding is in Python (SQLite has no regexp).
EXACT_REASONS_READ = 500


def reason_shape(text: str) -> str:
    """The reason with its variable parts replaced, so reasons that differ only in them group."""
    return _VARIABLE_PART.sub("#", text)


def errors_by_reason(
    db: Database, actor: Actor, campaign_id: int, *, limit: int = 20
) -> list[ErrorReason]:
    """The campaign's failed and unknown leads grouped by why, the commonest first."""
    reason = func.coalesce(CampaignLead.error, CampaignLead.status_reason, "no reason recorded")
    return _enrolments_by_reason(db, actor, campaign_id, ERROR_LEAD_STATUSES, reason, limit)


def waits_by_reason(
    db: Database, actor: Actor, campaign_id: int, *, limit: int = 20
) -> list[ErrorReason]:
    """The campaign's deferred leads grouped by why they wait (a contact cap, a public holiday,
    the send window, a provider's retry), the commonest first."""
    reason = func.coalesce(CampaignLead.status_reason, CampaignLead.error, "no reason recorded")
    return _enrolments_by_reason(db, actor, campaign_id, (EnrolmentStatus.deferred.value,), reason, limit)


def _enrolments_by_reason(
    db: Database, actor: Actor, campaign_id: int, statuses: tuple[str, ...],
    reason: ColumnElement[Any], limit: int
) -> list[ErrorReason]:
    """The campaign's leads in `statuses` grouped by `reason`, the commonest first.

    SQL groups by the exact text; texts that differ only in numbers (a due time, a phone) are
    then folded into one group, shown with its commonest wording.
    """
    actor.require(Permission.view_monitor)
    leads = func.count(CampaignLead.id)
    query = (
        select(CampaignLead.status, reason, leads, func.max(CampaignLead.updated_at))
        .where(CampaignLead.campaign_id == campaign_id,
               CampaignLead.status.in_(statuses))
        .group_by(CampaignLead.status, reason)
        .order_by(leads.desc())
        .limit(EXACT_REASONS_READ)
    )
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        exact = [(str(s), str(r), int(n), last) for s, r, n, last in session.execute(query)]
    groups: dict[tuple[str, str], ErrorReason] = {}
    for status, text, count, last in exact:  # commonest first: the first text names the group
        key = (status, reason_shape(text))
        found = groups.get(key)
        if found is None:
            groups[key] = ErrorReason(status, text, count, last)
            continue
        latest = max((t for t in (found.last_at, last) if t is not None), default=None)
        groups[key] = ErrorReason(status, found.reason, found.leads + count, latest, found.wordings + 1)
    return sorted(groups.values(), key=lambda e: -e.leads)[:limit]


def recent_enrolments(
    db: Database, actor: Actor, campaign_id: int, *, limit: int = 20
) -> list[RecentEnrolment]:
    """The campaign's most recently changed enrolments, to pick one to drill into."""
    actor.require(Permission.view_monitor)
    query = (
        select(CampaignLead.id, CampaignLead.status, CampaignLead.status_reason,
               CampaignLead.updated_at, Lead.id, Lead.first_name, Lead.last_name)
        .join(Lead, Lead.id == CampaignLead.lead_id)
        .where(CampaignLead.campaign_id == campaign_id)
        .order_by(CampaignLead.updated_at.desc())
        .limit(limit)
    )
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return [
            RecentEnrolment(cl_id, _name(first, last, lead_id), status, reason, updated)
            for cl_id, status, reason, updated, lead_id, first, last in session.execute(query)
        ]


@dataclass(frozen=True)
class EnrolmentRow:
    """One enrolment of a campaign as a list shows it: where it stands, what it cost."""

    campaign_lead_id: int
    campaign_id: int
    lead_id: int
    lead_name: str
    status: str
    status_reason: str | None
    error: str | None
    step: int
    variant: str
    attempts: int
    trace_id: str | None
    next_action_at: datetime | None
    cost_microusd: int
    replied_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


def enrolment_page(
    db: Database, actor: Actor, campaign_id: int, *, status: str | None = None,
    after_id: int | None = None, limit: int = 50,
) -> list[EnrolmentRow]:
    """One page of a campaign's enrolments in id order (the order they were enrolled).

    `after_id` is the last id of the page before: a keyset on the primary key, so enrolments
    added while a caller pages (a retry, a referred lead) neither shift nor repeat rows.
    """
    actor.require(Permission.view_monitor)
    if status is not None and status not in {s.value for s in EnrolmentStatus}:
        raise FieldInvalid(
            f"status '{status}' is not one of: {', '.join(s.value for s in EnrolmentStatus)}",
            field="status")
    query = (
        select(CampaignLead, Lead.first_name, Lead.last_name)
        .join(Lead, Lead.id == CampaignLead.lead_id)
        .where(CampaignLead.campaign_id == campaign_id)
        .order_by(CampaignLead.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(CampaignLead.status == status)
    if after_id is not None:
        query = query.where(CampaignLead.id > after_id)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        load_campaign(session, campaign_id)
        return [
            EnrolmentRow(
                e.id, e.campaign_id, e.lead_id, _name(first, last, e.lead_id), e.status,
                e.status_reason, e.error, e.step, e.variant, e.attempts, e.trace_id,
                e.next_action_at, e.cost_microusd or 0, e.replied_at, e.created_at, e.updated_at,
                e.completed_at,
            )
            for e, first, last in session.execute(query)
        ]


def enrolment_trace(db: Database, actor: Actor, campaign_lead_id: int) -> EnrolmentTrace:
    """One enrolment's state, node-by-node log, model calls and sent messages."""
    actor.require(Permission.view_monitor)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        row = session.execute(
            select(CampaignLead, Lead)
            .join(Lead, Lead.id == CampaignLead.lead_id)
            .where(CampaignLead.id == campaign_lead_id)
        ).first()
        if row is None:
            raise NotFound(f"no lead {campaign_lead_id} in any of your campaigns")
        enrolment, lead = row
        events = session.scalars(
            select(Event).where(Event.campaign_lead_id == campaign_lead_id)
            .order_by(Event.id).limit(TRACE_EVENT_LIMIT)
        )
        messages = session.scalars(
            select(Message).where(Message.campaign_lead_id == campaign_lead_id).order_by(Message.step)
        )
        calls = session.scalars(
            select(LLMCall).where(LLMCall.campaign_lead_id == campaign_lead_id).order_by(LLMCall.id)
        )
        name = _name(lead.first_name, lead.last_name, lead.id)
        return EnrolmentTrace(
            campaign_lead_id=enrolment.id,
            campaign_id=enrolment.campaign_id,
            lead_id=lead.id,
            lead_name=name,
            company=lead.company,
            status=enrolment.status,
            status_reason=enrolment.status_reason,
            error=enrolment.error,
            step=enrolment.step,
            variant=enrolment.variant,
            trace_id=shown_trace_id(enrolment.trace_id),
            draft_subject=enrolment.draft_subject,
            draft_body=enrolment.draft_body,
            guard=dict(enrolment.guard_result or {}),
            facts=list(enrolment.research or []),
            cost_microusd=enrolment.cost_microusd or 0,
            input_tokens=enrolment.input_tokens or 0,
            output_tokens=enrolment.output_tokens or 0,
            events=[
                MonitorEvent(e.id, e.campaign_lead_id, name, shown_trace_id(e.trace_id), e.node,
                             e.level, e.message, e.created_at)
                for e in events
            ],
            messages=[
                TraceMessage(m.step, m.to_address, m.subject, m.body, m.status, m.provider,
                             m.error, m.sent_at)
                for m in messages
            ],
            calls=[
                TraceCall(c.node, c.model, c.input_tokens, c.output_tokens, c.cost_microusd,
                          c.latency_ms, c.error, c.created_at)
                for c in calls
            ],
        )
