"""Campaigns: create and edit, the life cycle (start, schedule, pause, resume, cancel, complete), progress.

Life cycle: `draft -> scheduled -> running <-> paused -> completed`, `cancelled` from any live
state. Starting enrols the audience into `campaign_leads` with one INSERT ... SELECT (audiences
can be a million leads), once: a lead already enrolled is never enrolled again. What may be edited
depends on the status: everything in draft; the send rate, the budget cap, the schedule and the
send window also while scheduled or paused; only the name and description while running.
Progress (counts, cost, throughput, ETA) is a handful of GROUP BY queries over indexed columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from core.audit import record_audit
from core.channels.base import redact_secrets
from core.compliance.quiet_hours import parse_clock
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.inbound.policy import check_stop_classes
from core.merge_fields import check_campaign_prompts
from core.models import (
    DEFAULT_REPLY_STOP_CLASSES,
    FINAL_LEAD_STATUSES,
    Campaign,
    CampaignLead,
    CampaignStatus,
    Channel,
    Lead,
    LeadStatus,
    Message,
    MessageStatus,
    Tenant,
    WorkerHeartbeat,
)
from core.money import format_usd
from core.permissions import Actor, Permission
from core.pipeline.audience import AUDIENCE_KEYS, audience_conditions
from core.pipeline.drafting import variant_expression
from core.sender_verification import unverified_sender_reason
from core.status_words import campaign_status_text, due_words, step_name
from core.text import plural

if TYPE_CHECKING:
    from core.preflight import Preflight

DEFAULT_SMS_PROMPT = (
    "You write one short, friendly SMS from a sales rep to a professional they have not met. "
    "Open with their first name, mention one specific fact about them or their company, say in "
    "one sentence how we can help, and end with a simple question they can answer in a word. "
    "No links unless the campaign allows them, no emojis, no pressure."
)
DEFAULT_EMAIL_PROMPT = (
    "You write a short, plain-text sales email (a subject line and at most 120 words) from a "
    "sales rep to a professional they have not met. Greet them by first name, open with one "
    "specific fact about them or their company, explain in two sentences how we can help someone "
    "in their role, and close with one clear, low-effort ask (a 15-minute call). Warm, direct, "
    "no hype, no attachments."
)
DEFAULT_PROMPTS = {Channel.sms.value: DEFAULT_SMS_PROMPT, Channel.email.value: DEFAULT_EMAIL_PROMPT}

# Lead statuses that still need work, now or later; a campaign with none left is complete.
OPEN_LEAD_STATUSES = tuple(s.value for s in LeadStatus if s not in FINAL_LEAD_STATUSES)
# Lead statuses the runner claims once `next_action_at` has come.
CLAIMABLE_LEAD_STATUSES = (
    LeadStatus.pending.value,
    LeadStatus.deferred.value,
    LeadStatus.approved.value,
)
THROUGHPUT_WINDOW = timedelta(minutes=5)
# The per-minute send counts the monitor draws: long enough to see a burst and the lull after it.
SENDS_SERIES_MINUTES = 15
SENT_MESSAGE_STATUSES = (MessageStatus.sent.value, MessageStatus.delivered.value)
# How often a job runner writes its heartbeat (jobs.runner), so the monitor knows who is alive.
HEARTBEAT_SECONDS = 5.0

ALWAYS_EDITABLE = frozenset({"name", "description", "reply_stop_classes"})
# Changing how the run is paced or capped, never what it says or to whom.
PAUSED_EDITABLE = ALWAYS_EDITABLE | {
    "sends_per_minute", "budget_cap_microusd", "scheduled_at", "quiet_hours",
}
DRAFT_EDITABLE = PAUSED_EDITABLE | {
    "channel", "system_prompt", "variants", "model", "temperature", "audience", "steps",
    "research_web", "max_sms_segments", "approval_required",
}
EDITABLE_BY_STATUS: dict[str, frozenset[str]] = {
    CampaignStatus.draft.value: frozenset(DRAFT_EDITABLE),
    CampaignStatus.scheduled.value: frozenset(PAUSED_EDITABLE),
    CampaignStatus.paused.value: frozenset(PAUSED_EDITABLE),
    CampaignStatus.running.value: ALWAYS_EDITABLE,
}


@dataclass(frozen=True)
class CampaignView:
    id: int
    tenant_id: int
    name: str
    description: str | None
    channel: str
    status: str
    status_reason: str | None
    system_prompt: str
    variants: list[Any]
    model: str
    temperature: float
    audience: dict[str, Any]
    steps: list[Any]
    research_web: bool
    max_sms_segments: int
    scheduled_at: datetime | None
    quiet_hours: dict[str, Any] | None
    sends_per_minute: int | None
    budget_cap_microusd: int | None
    spent_microusd: int
    approval_required: bool
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    archived_at: datetime | None = None
    reply_stop_classes: tuple[str, ...] = DEFAULT_REPLY_STOP_CLASSES

    @classmethod
    def of(cls, c: Campaign) -> CampaignView:
        return cls(
            id=c.id, tenant_id=c.tenant_id, name=c.name, description=c.description,
            channel=c.channel, status=c.status, status_reason=c.status_reason,
            system_prompt=c.system_prompt, variants=list(c.variants or []), model=c.model,
            temperature=c.temperature, audience=dict(c.audience or {}), steps=list(c.steps or []),
            research_web=c.research_web, max_sms_segments=c.max_sms_segments,
            scheduled_at=c.scheduled_at, quiet_hours=c.quiet_hours,
            sends_per_minute=c.sends_per_minute, budget_cap_microusd=c.budget_cap_microusd,
            spent_microusd=c.spent_microusd or 0, approval_required=c.approval_required,
            created_at=c.created_at, started_at=c.started_at, completed_at=c.completed_at,
            archived_at=c.archived_at, reply_stop_classes=tuple(c.reply_stop_classes or ()),
        )


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


# -- validation ------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValidationError("a campaign needs a name")
    if len(cleaned) > 200:
        raise ValidationError("the campaign name may have at most 200 characters")
    return cleaned


def _check_channel(channel: str) -> str:
    if channel not in DEFAULT_PROMPTS:
        raise ValidationError(f"channel '{channel}' is not one of: sms, email")
    return channel


def _check_audience(audience: dict[str, Any] | None) -> dict[str, Any]:
    audience = dict(audience or {})
    unknown = set(audience) - set(AUDIENCE_KEYS)
    if unknown:
        raise ValidationError(
            f"unknown audience filter {', '.join(sorted(unknown))}; use {', '.join(AUDIENCE_KEYS)}"
        )
    for key, values in audience.items():
        if not isinstance(values, list):
            raise ValidationError(f"the audience filter '{key}' must be a list")
    return {k: v for k, v in audience.items() if v}


def _check_steps(steps: list[Any] | None) -> list[Any]:
    steps = list(steps or [{"delay_hours": 0}])
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            raise ValidationError(f"step {number} must be an object with delay_hours and a prompt")
        delay = step.get("delay_hours", 0)
        if not isinstance(delay, (int, float)) or delay < 0:
            raise ValidationError(f"step {number}: delay_hours must be a number of hours, 0 or more")
    return steps


def _check_quiet_hours(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A campaign's send-window override: start and end "HH:MM" (equal: all day), weekdays only."""
    if not value:
        return None
    unknown = set(value) - {"start", "end", "weekdays_only"}
    if unknown:
        raise ValidationError(f"unknown send window keys: {', '.join(sorted(unknown))}")
    window: dict[str, Any] = {
        k: parse_clock(str(value[k]), what=f"the send window {k}").strftime("%H:%M")
        for k in ("start", "end")
        if value.get(k)
    }
    window["weekdays_only"] = bool(value.get("weekdays_only", False))
    return window


def _check_change(key: str, value: Any) -> Any:
    """Validate one editable field; returns the value to store."""
    if key == "name":
        return _check_name(value)
    if key == "channel":
        return _check_channel(value)
    if key == "system_prompt":
        if not value or not str(value).strip():
            raise ValidationError("the prompt may not be empty")
        return str(value).strip()
    if key == "audience":
        return _check_audience(value)
    if key == "steps":
        return _check_steps(value)
    if key == "temperature":
        if not 0.0 <= float(value) <= 2.0:
            raise ValidationError("the temperature must be between 0 and 2")
        return float(value)
    if key == "max_sms_segments":
        if not 1 <= int(value) <= 10:
            raise ValidationError("an SMS may have 1 to 10 segments")
        return int(value)
    if key == "sends_per_minute":
        if value is not None and int(value) <= 0:
            raise ValidationError("the send rate must be at least 1 per minute (or no limit)")
        return None if value is None else int(value)
    if key == "budget_cap_microusd":
        if value is not None and int(value) < 0:
            raise ValidationError("the budget cap may not be negative")
        return None if value is None else int(value)
    if key == "scheduled_at":
        if value is not None and value.tzinfo is None:
            raise ValidationError("give the start time with its time zone")
        return value
    if key == "quiet_hours":
        return _check_quiet_hours(value)
    if key == "reply_stop_classes":
        return check_stop_classes(value)
    if key == "variants":
        variants = list(value or [])
        names = [v.get("name") for v in variants if isinstance(v, dict)]
        if len(names) != len(variants) or not all(names) or len(set(names)) != len(names):
            raise ValidationError("each A/B variant needs a distinct name and a prompt")
        return variants
    return value


# -- create and edit -------------------------------------------------------------------------


def create_campaign(
    db: Database,
    actor: Actor,
    *,
    name: str,
    channel: str,
    system_prompt: str | None = None,
    model: str | None = None,
    approval_required: bool = False,
    budget_cap_microusd: int | None = None,
    **fields: Any,
) -> CampaignView:
    """A new draft campaign; with no prompt it gets the channel's default prompt."""
    actor.require(Permission.edit_campaigns)
    unknown = set(fields) - DRAFT_EDITABLE
    if unknown:
        raise ValidationError(f"unknown campaign field {', '.join(sorted(unknown))}")
    channel = _check_channel(channel)
    values: dict[str, Any] = {
        "name": _check_name(name),
        "channel": channel,
        "system_prompt": _check_change("system_prompt", system_prompt or DEFAULT_PROMPTS[channel]),
        "model": model or db.settings.default_model,
        "approval_required": approval_required,
        "budget_cap_microusd": _check_change("budget_cap_microusd", budget_cap_microusd),
        "steps": _check_steps(None),
        "audience": {},
    }
    values.update({key: _check_change(key, value) for key, value in fields.items()})
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        check_campaign_prompts(session, values)
        campaign = Campaign(created_by=actor.user_id, **values)
        session.add(campaign)
        session.flush()
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="create",
                     entity="campaign", entity_id=campaign.id,
                     details={"name": campaign.name, "channel": channel})
        return CampaignView.of(campaign)


def leads_in_lock_order(*conditions: ColumnElement[bool]) -> Any:
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


def _locked_campaign(session: Session, campaign_id: int) -> Campaign:
    # FOR NO KEY UPDATE: it still serialises life-cycle changes, but does not block the key-share
    # locks that workers' inserts (ledger rows, model calls, events) take on their campaign.
    campaign = session.scalar(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update(key_share=True)
    )
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def update_campaign(db: Database, actor: Actor, campaign_id: int, **changes: Any) -> CampaignView:
    """Edit a campaign within what its status allows (see the module docstring)."""
    actor.require(Permission.edit_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        allowed = EDITABLE_BY_STATUS.get(campaign.status, frozenset())
        refused = sorted(set(changes) - allowed)
        if refused:
            unknown = sorted(set(refused) - DRAFT_EDITABLE)
            if unknown:
                raise ValidationError(f"unknown campaign field {', '.join(unknown)}")
            hint = (
                "pause it first" if campaign.status == CampaignStatus.running.value
                and set(refused) <= PAUSED_EDITABLE else "only a draft may change that"
            )
            raise Conflict(
                f"campaign '{campaign.name}' is {campaign.status}: {', '.join(refused)} cannot be "
                f"changed now ({hint})"
            )
        cleaned = {key: _check_change(key, value) for key, value in changes.items()}
        check_campaign_prompts(session, cleaned)
        for key, value in cleaned.items():
            setattr(campaign, key, value)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="edit",
                     entity="campaign", entity_id=campaign.id,
                     details={"fields": sorted(cleaned)})
        session.flush()
        return CampaignView.of(campaign)


def get_campaign(db: Database, actor: Actor, campaign_id: int) -> CampaignView:
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return CampaignView.of(campaign)


def archived_condition(archived: bool | None) -> ColumnElement[bool]:
    """Which campaigns a list shows: not archived (the default), only archived, or all (None)."""
    if archived is None:
        return literal(True)
    return Campaign.archived_at.is_not(None) if archived else Campaign.archived_at.is_(None)


def list_campaigns(db: Database, actor: Actor, *, archived: bool | None = False) -> list[CampaignView]:
    """The tenant's campaigns, newest first; archived ones only when asked (see `archived_condition`)."""
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return [
            CampaignView.of(c)
            for c in session.scalars(
                select(Campaign).where(archived_condition(archived)).order_by(Campaign.created_at.desc())
            )
        ]


# -- enrolment -------------------------------------------------------------------------------


def count_audience(db: Database, actor: Actor, campaign_id: int) -> int:
    """How many leads starting the campaign would enrol now."""
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        conditions = audience_conditions(actor.tenant_id, campaign.channel, campaign.audience or {})
        return session.scalar(select(func.count(Lead.id)).where(*conditions)) or 0


def _enrol(session: Session, campaign: Campaign, now: datetime) -> int:
    already = exists().where(
        CampaignLead.campaign_id == campaign.id, CampaignLead.lead_id == Lead.id
    )
    source = select(
        literal(campaign.tenant_id),
        literal(campaign.id),
        Lead.id,
        variant_expression(Lead.id, campaign.variants or []),
        literal(0),
        literal(LeadStatus.pending.value),
        literal(now, CampaignLead.next_action_at.type),
        literal(0),
        literal([], JSON),
        literal({}, JSON),
        literal(0),
        literal(0),
        literal(0),
        literal(now, CampaignLead.created_at.type),
        literal(now, CampaignLead.updated_at.type),
    ).where(*audience_conditions(campaign.tenant_id, campaign.channel, campaign.audience or {}),
            ~already)
    columns = [
        "tenant_id", "campaign_id", "lead_id", "variant", "step", "status", "next_action_at",
        "attempts", "research", "guard_result", "cost_microusd", "input_tokens",
        "output_tokens", "created_at", "updated_at",
    ]
    result = session.execute(insert(CampaignLead).from_select(columns, source))
    return int(getattr(result, "rowcount", 0) or 0)


def _start_in(session: Session, campaign: Campaign, now: datetime) -> int:
    enrolled = _enrol(session, campaign, now)
    campaign.status = CampaignStatus.running.value
    campaign.status_reason = None
    campaign.scheduled_at = None
    campaign.started_at = campaign.started_at or now
    return enrolled


# -- life cycle ------------------------------------------------------------------------------


def _refuse(campaign: Campaign, action: str) -> Conflict:
    return Conflict(f"campaign '{campaign.name}' is {campaign.status}: it cannot be {action}")


def _preflight(db: Database, actor: Actor, campaign_id: int) -> Preflight:
    # Imported here: the pre-flight prices the run, and the pricing's imports reach this module.
    from core.preflight import preflight

    return preflight(db, actor, campaign_id)


def start_campaign(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignView:
    """Enrol the audience and run. Starting a running campaign again changes nothing."""
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    checks = _preflight(db, actor, campaign_id)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        if campaign.status == CampaignStatus.running.value:
            return CampaignView.of(campaign)
        if campaign.status not in (CampaignStatus.draft.value, CampaignStatus.scheduled.value):
            raise _refuse(campaign, "started" + (" (resume it instead)"
                                                 if campaign.status == "paused" else ""))
        if not checks.ready:
            raise Conflict(checks.refusal(campaign.name))
        enrolled = _start_in(session, campaign, now)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="start",
                     entity="campaign", entity_id=campaign.id, details={"enrolled": enrolled})
        session.flush()
        return CampaignView.of(campaign)


def schedule_campaign(
    db: Database, actor: Actor, campaign_id: int, start_at: datetime, *, now: datetime | None = None
) -> CampaignView:
    """Start a draft later: the runner starts it when `start_at` comes."""
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    if start_at.tzinfo is None:
        raise ValidationError("give the start time with its time zone")
    if start_at <= now:
        raise ValidationError("the start time is in the past: start the campaign now instead")
    checks = _preflight(db, actor, campaign_id)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        if campaign.status not in (CampaignStatus.draft.value, CampaignStatus.scheduled.value):
            raise _refuse(campaign, "scheduled")
        if not checks.ready:
            raise Conflict(checks.refusal(campaign.name, "be scheduled"))
        campaign.status = CampaignStatus.scheduled.value
        campaign.scheduled_at = start_at
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="schedule", entity="campaign", entity_id=campaign.id,
                     details={"start_at": start_at.isoformat()})
        session.flush()
        return CampaignView.of(campaign)


def pause_campaign_in(
    session: Session, campaign_id: int, reason: str | None,
    *, only_from: CampaignStatus = CampaignStatus.running, user_id: int | None = None,
) -> bool:
    """Pause inside the caller's transaction (the gate uses it when the budget cap is hit).

    Returns False when the campaign was not in `only_from`. Leads in flight finish; no new lead
    is claimed from a paused campaign.
    """
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


def pause_campaign(
    db: Database, actor: Actor, campaign_id: int, reason: str | None = None
) -> CampaignView:
    actor.require(Permission.run_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        if campaign.status != CampaignStatus.running.value:
            raise _refuse(campaign, "paused")
        pause_campaign_in(session, campaign_id, reason or f"paused by {actor.username or 'a user'}",
                          user_id=actor.user_id)
        session.refresh(campaign)
        return CampaignView.of(campaign)


def _refuse_an_unverified_sender(session: Session, campaign: Campaign, action: str) -> None:
    """A resume's check that an email campaign's From address is verified (a start's is in core.preflight)."""
    if campaign.channel != Channel.email.value:
        return
    tenant = session.get(Tenant, campaign.tenant_id)
    reason = unverified_sender_reason(session, campaign.tenant_id, tenant.email_sender if tenant else None)
    if reason:
        raise Conflict(f"campaign '{campaign.name}' cannot {action}: {reason}")


def _check_budget_left(campaign: Campaign) -> None:
    cap = campaign.budget_cap_microusd
    if cap is not None and (campaign.spent_microusd or 0) >= cap:
        raise Conflict(
            f"campaign '{campaign.name}' has spent {format_usd(campaign.spent_microusd)} of its "
            f"{format_usd(cap)} budget cap: raise the cap before resuming (a paused campaign's cap "
            "can be changed on its Editor tab)"
        )


def resume_campaign(db: Database, actor: Actor, campaign_id: int) -> CampaignView:
    actor.require(Permission.run_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        if campaign.status != CampaignStatus.paused.value:
            raise _refuse(campaign, "resumed")
        _check_budget_left(campaign)
        _refuse_an_unverified_sender(session, campaign, "resume")
        campaign.status = CampaignStatus.running.value
        campaign.status_reason = None
        campaign.scheduled_at = None
        campaign.consecutive_provider_failures = 0  # a person looked: count afresh
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="resume",
                     entity="campaign", entity_id=campaign.id)
        session.flush()
        return CampaignView.of(campaign)


def cancel_campaign(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignView:
    """Stop for good: every open lead ends `cancelled`, none is left in flight.

    The leases are cleared too: a worker still running one of these leads can no longer write
    a ledger row or an outcome (both are guarded by the lease), so nothing more is sent. A send
    already under way when the campaign is cancelled is recorded in the ledger as it ends.
    """
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        live = (CampaignStatus.draft.value, *(s.value for s in (
            CampaignStatus.scheduled, CampaignStatus.running, CampaignStatus.paused)))
        if campaign.status not in live:
            raise _refuse(campaign, "cancelled")
        result = session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(leads_in_lock_order(
                CampaignLead.campaign_id == campaign_id,
                CampaignLead.status.in_(OPEN_LEAD_STATUSES))))
            .values(status=LeadStatus.cancelled.value, status_reason="campaign cancelled",
                    next_action_at=None, lease_owner=None, lease_expires_at=None,
                    completed_at=now)
        )
        campaign.status = CampaignStatus.cancelled.value
        # A pause's reason ("raise the cap and resume") no longer holds: say who ended it.
        campaign.status_reason = f"cancelled by {actor.username or 'a user'}"
        campaign.completed_at = now
        campaign.scheduled_at = None
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="cancel",
                     entity="campaign", entity_id=campaign.id,
                     details={"leads_cancelled": int(getattr(result, "rowcount", 0) or 0)})
        session.flush()
        return CampaignView.of(campaign)


# -- retrying failed leads -------------------------------------------------------------------

# A reviewer's rejection (core.pipeline.review) also ends a lead `failed`, but it is a person's
# decision, not an error: it is not retried.
REVIEWER_REJECTION = "rejected by a reviewer"
# Failed leads may be put back while the campaign can still run them (a completed one reopens).
RETRYABLE_CAMPAIGN_STATUSES = (
    CampaignStatus.running.value, CampaignStatus.paused.value, CampaignStatus.completed.value,
)


def _retryable(campaign_id: int) -> list[ColumnElement[bool]]:
    return [
        CampaignLead.campaign_id == campaign_id,
        CampaignLead.status == LeadStatus.failed.value,
        or_(CampaignLead.error.is_(None), ~CampaignLead.error.startswith(REVIEWER_REJECTION)),
    ]


def retryable_failed_leads(db: Database, actor: Actor, campaign_id: int) -> int:
    """How many failed leads `retry_failed_leads` would put back (reviewer rejections are not)."""
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        if session.get(Campaign, campaign_id) is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return session.scalar(select(func.count(CampaignLead.id)).where(*_retryable(campaign_id))) or 0


def retry_failed_leads(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> int:
    """Put the campaign's failed leads back to pending, attempts reset; returns how many.

    Skipped, unknown (a send that may have gone out) and sent leads are left alone, and so are
    drafts a reviewer rejected. Each lead is retried at the step where it failed; a ledger row
    its failed send left is reused (a failed row was never sent). A completed campaign reopens
    paused, for a person to resume when the cause is fixed; a running one picks the leads up
    at once.
    """
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = _locked_campaign(session, campaign_id)
        if campaign.status not in RETRYABLE_CAMPAIGN_STATUSES:
            raise _refuse(campaign, "given its failed leads back (only a running, paused or "
                                    "completed campaign can retry them)")
        result = session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(leads_in_lock_order(*_retryable(campaign_id))))
            .values(status=LeadStatus.pending.value, attempts=0, error=None, next_action_at=now,
                    completed_at=None, lease_owner=None, lease_expires_at=None, updated_at=now,
                    status_reason=f"put back for a retry by {actor.username or 'a user'}")
            .execution_options(synchronize_session=False)
        )
        retried = int(getattr(result, "rowcount", 0) or 0)
        if retried == 0:
            return 0
        if campaign.status == CampaignStatus.completed.value:
            campaign.status = CampaignStatus.paused.value
            campaign.completed_at = None
            campaign.status_reason = (f"{plural(retried, 'failed lead')} put back to pending: resume the "
                                      "campaign to send them")
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="retry_failed", entity="campaign", entity_id=campaign.id,
                     details={"leads": retried})
        return retried


# -- runner ticks (system sessions: they work across tenants) --------------------------------


def start_due_campaigns(db: Database, *, now: datetime | None = None) -> list[int]:
    """Start scheduled campaigns whose time has come, and resume paused ones given a resume time."""
    now = now or datetime.now(UTC)
    started: list[int] = []
    with db.session(system=True) as session, session.begin():
        due = session.scalars(
            select(Campaign)
            .where(Campaign.status.in_((CampaignStatus.scheduled.value,
                                        CampaignStatus.paused.value)),
                   Campaign.scheduled_at.is_not(None), Campaign.scheduled_at <= now)
            .with_for_update(skip_locked=True, key_share=True)
        ).all()
        for campaign in due:
            if campaign.status == CampaignStatus.scheduled.value:
                enrolled = _start_in(session, campaign, now)
                details: dict[str, Any] = {"enrolled": enrolled, "scheduled": True}
                action = "start"
            else:
                campaign.status = CampaignStatus.running.value
                campaign.status_reason = None
                campaign.scheduled_at = None
                campaign.consecutive_provider_failures = 0
                details, action = {"scheduled": True}, "resume"
            record_audit(session, tenant_id=campaign.tenant_id, user_id=None, action=action,
                         entity="campaign", entity_id=campaign.id, details=details)
            started.append(campaign.id)
    return started


def complete_finished_campaigns(db: Database, *, now: datetime | None = None) -> list[int]:
    """Mark running campaigns with no open lead left as completed."""
    now = now or datetime.now(UTC)
    open_lead = exists().where(
        CampaignLead.campaign_id == Campaign.id, CampaignLead.status.in_(OPEN_LEAD_STATUSES)
    )
    with db.session(system=True) as session, session.begin():
        result = session.execute(
            update(Campaign)
            .where(Campaign.status == CampaignStatus.running.value, ~open_lead)
            .values(status=CampaignStatus.completed.value, completed_at=now, status_reason=None)
            .returning(Campaign.id, Campaign.tenant_id)
        ).all()
        for campaign_id, tenant_id in result:
            record_audit(session, tenant_id=tenant_id, user_id=None, action="complete",
                         entity="campaign", entity_id=campaign_id)
    return [row[0] for row in result]


# -- progress --------------------------------------------------------------------------------


def campaign_progress(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignProgress:
    actor.require(Permission.view_campaigns)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
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
                CampaignLead.status != LeadStatus.in_progress.value,
            )
        ) or 0
        due_now = session.scalar(
            select(func.count(CampaignLead.id)).where(
                CampaignLead.campaign_id == campaign_id,
                or_(
                    CampaignLead.status == LeadStatus.in_progress.value,
                    and_(CampaignLead.status.in_(CLAIMABLE_LEAD_STATUSES),
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
            open_leads=sum(n for s, n in leads_by_status.items() if s in OPEN_LEAD_STATUSES),
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
            in_flight=leads_by_status.get(LeadStatus.in_progress.value, 0),
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
        if status in (LeadStatus.pending.value, LeadStatus.approved.value):
            add(step, "waiting", later_count)
            add(step, "due", count - later_count)
        elif status == LeadStatus.in_progress.value:
            add(step, "due", count)
        elif status == LeadStatus.deferred.value:
            add(step, "deferred", count)
        elif status == LeadStatus.awaiting_approval.value:
            add(step, "in_review", count)
        elif status in (LeadStatus.failed.value, LeadStatus.unknown.value):
            add(step, "failed", count)
        elif status == LeadStatus.skipped.value:
            add(step, "skipped", count)
        else:  # sent (counted from the ledger) and cancelled
            continue
        if earliest is not None and status in CLAIMABLE_LEAD_STATUSES:
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


# -- messages and lookups --------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    id: int
    lead_id: int | None  # None: the lead was erased, its message kept anonymised
    to: str
    step: int
    status: str
    subject: str | None
    body: str
    provider: str
    created_at: datetime
    sent_at: datetime | None


def campaign_messages(
    db: Database, actor: Actor, campaign_id: int, *, status: str | None = None,
    limit: int | None = None,
) -> list[MessageView]:
    """The ledger rows of a campaign, oldest first."""
    actor.require(Permission.view_campaigns)
    query = select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
    if status:
        query = query.where(Message.status == status)
    if limit:
        query = query.limit(limit)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        if session.get(Campaign, campaign_id) is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return [
            MessageView(m.id, m.lead_id, m.to_address, m.step, m.status, m.subject, m.body,
                        m.provider, m.created_at, m.sent_at)
            for m in session.scalars(query)
        ]


def tenant_of_campaign(db: Database, campaign_id: int) -> int:
    """The tenant a campaign belongs to: the CLI addresses campaigns by id alone."""
    with db.session(system=True, read_only=True) as session:
        tenant_id = session.scalar(select(Campaign.tenant_id).where(Campaign.id == campaign_id))
    if tenant_id is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return int(tenant_id)


# -- the workers, for the monitor ----------------------------------------------------------


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    hostname: str
    pid: int
    mode: str
    started_at: datetime
    last_seen_at: datetime
    in_flight: int
    processed: int
    alive: bool


def list_workers(
    db: Database, actor: Actor, *, now: datetime | None = None, stale_after: timedelta | None = None
) -> list[WorkerView]:
    """The job runners that reported a heartbeat; `alive` when seen within `stale_after`."""
    actor.require(Permission.view_monitor)
    now = now or datetime.now(UTC)
    # Three missed heartbeats mean the worker is gone.
    stale_after = stale_after or timedelta(seconds=3 * max(HEARTBEAT_SECONDS, db.settings.tick_seconds))
    with db.session(system=True, read_only=True) as session:
        rows = session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen_at.desc()))
        return [
            WorkerView(w.worker_id, w.hostname, w.pid, w.mode, w.started_at, w.last_seen_at,
                       w.in_flight, w.processed, now - w.last_seen_at <= stale_after)
            for w in rows
        ]
