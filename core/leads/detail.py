"""One lead in full (its page): fields, alternates, tags, campaigns, messages, replies, opt-out,
suppressions and audit entries; and its edit, checked with the import's own normalisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import JSON, ColumnElement, cast, delete, func, insert, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.leads.importer import tenant_country
from core.leads.mapping import LEAD_FIELDS
from core.leads.normalise import FieldLimits, LeadNormaliser, normalise_tags
from core.leads.queries import lead_name
from core.models import (
    AuditLog,
    Campaign,
    CampaignLead,
    Channel,
    EnrolmentStatus,
    Lead,
    LeadImport,
    LeadTag,
    LLMCall,
    Message,
    MessageStatus,
    Suppression,
    User,
)
from core.permissions import Actor, Permission

# The fields a person edits on the lead's page, in the order of the form, with the import's labels.
EDITABLE_FIELDS: dict[str, str] = {
    name: LEAD_FIELDS[name]
    for name in ("first_name", "last_name", "phone", "email", "company", "title", "website", "industry",
                 "city", "country", "time_zone", "notes")
}
UPDATE_ACTION = "lead.update"
CREATE_ACTION = "lead.create"
# Bulk actions of the lead table whose audit entry lists the leads in details["lead_ids"].
BULK_ACTIONS = ("leads.tag", "leads.untag", "leads.opt_out", "leads.opt_out_undo")

# An enrolment's state in a sales manager's words (never `awaiting_approval`).
ENROLMENT_WORDS: dict[str, str] = {
    EnrolmentStatus.pending.value: "waiting for its turn",
    EnrolmentStatus.in_progress.value: "being written now",
    EnrolmentStatus.awaiting_approval.value: "draft waiting for review",
    EnrolmentStatus.approved.value: "approved, about to be sent",
    EnrolmentStatus.sent.value: "sent",
    EnrolmentStatus.skipped.value: "skipped",
    EnrolmentStatus.deferred.value: "held back",
    EnrolmentStatus.failed.value: "failed",
    EnrolmentStatus.unknown.value: "outcome unknown: check with the provider",
    EnrolmentStatus.cancelled.value: "stopped",
}
MESSAGE_WORDS: dict[str, str] = {
    MessageStatus.sending.value: "being sent",
    MessageStatus.sent.value: "sent",
    MessageStatus.delivered.value: "delivered",
    MessageStatus.undelivered.value: "not delivered (the carrier said so)",
    MessageStatus.failed.value: "failed",
    MessageStatus.unknown.value: "outcome unknown: check with the provider",
}
ACTION_WORDS: dict[str, str] = {
    CREATE_ACTION: "added by hand",
    UPDATE_ACTION: "edited",
    "leads.tag": "tagged",
    "leads.untag": "tag removed",
    "leads.opt_out": "opted out",
    "leads.opt_out_undo": "opt-out undone",
    "reply": "reply recorded",
}


@dataclass(frozen=True)
class Enrolment:
    """The lead in one campaign: where its sequence stands, in words."""

    campaign_id: int
    campaign: str
    campaign_status: str
    channel: str
    variant: str
    step: str  # "step 2 of 3"
    state: str  # "follow-up due 2026-12-03 09:00 UTC", "skipped: opted out", "held back: contact cap ..."
    replied_at: datetime | None
    cost_microusd: int


@dataclass(frozen=True)
class SentMessage:
    campaign: str
    step: int  # 1 for the first touch
    channel: str
    to: str
    subject: str | None
    body: str
    status: str  # in words
    sent_at: datetime | None
    segments: int
    # The model calls that wrote it (those of its enrolment after the previous message).
    cost_microusd: int


@dataclass(frozen=True)
class Reply:
    at: datetime
    campaign: str | None  # None: recorded on the lead, outside any campaign


@dataclass(frozen=True)
class SuppressionMatch:
    channel: str
    address: str
    reason: str
    source: str | None
    since: datetime


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str
    action: str  # in words
    details: str


@dataclass(frozen=True)
class LeadDetail:
    id: int
    name: str
    fields: dict[str, Any]  # EDITABLE_FIELDS -> value (None when empty)
    alternates: list[dict[str, Any]]
    tags: list[str]
    custom_fields: dict[str, Any]
    import_label: str | None
    opted_out_at: datetime | None
    replied_at: datetime | None
    created_at: datetime
    updated_at: datetime
    suppressions: list[SuppressionMatch]
    enrolments: list[Enrolment]
    messages: list[SentMessage]
    replies: list[Reply]
    audit: list[AuditEntry]

    @property
    def addresses(self) -> list[tuple[str, str]]:
        """Every (channel, address) of the lead, its own first, then its alternates."""
        return lead_addresses(self.fields.get("phone"), self.fields.get("email"), self.alternates)


def lead_addresses(phone: str | None, email: str | None, alternates: list[Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for channel, address in [(Channel.sms.value, phone), (Channel.email.value, email)] + [
        (str(a.get("channel")), a.get("value")) for a in alternates or [] if isinstance(a, dict)
    ]:
        known = channel in (Channel.sms.value, Channel.email.value)
        if address and known and (channel, address) not in found:
            found.append((channel, str(address)))
    return found


def load_lead(session: Session, lead_id: int) -> Lead:
    """The tenant's lead, or NotFound: another tenant's id reads exactly like one that never was."""
    lead = session.scalar(select(Lead).where(Lead.id == lead_id))
    if lead is None:
        raise NotFound(f"lead #{lead_id} does not exist (it may have been erased)")
    return lead


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else ""


def _state(enrolment: CampaignLead) -> str:
    words = ENROLMENT_WORDS.get(enrolment.status, enrolment.status.replace("_", " "))
    due = enrolment.next_action_at
    reason = enrolment.status_reason or enrolment.error
    if enrolment.status == EnrolmentStatus.pending.value and enrolment.step > 0 and due:
        return f"follow-up due {_when(due)}"
    if enrolment.status == EnrolmentStatus.deferred.value and reason:
        # Why it waits (a contact cap, a public holiday, the send window) and until when.
        return f"{words}: {reason}"
    if enrolment.status in (EnrolmentStatus.pending.value, EnrolmentStatus.deferred.value) and due:
        return f"{words} until {_when(due)}"
    if reason and enrolment.status in (EnrolmentStatus.skipped.value, EnrolmentStatus.failed.value,
                                       EnrolmentStatus.cancelled.value):
        return f"{words}: {reason}"
    return words


def _mentions(session: Session, lead_id: int) -> ColumnElement[bool]:
    """A WHERE clause on AuditLog: a bulk action of the lead table whose lead_ids hold the lead."""
    if session.get_bind().dialect.name == "postgresql":
        listed = cast(cast(AuditLog.details, JSON)["lead_ids"], JSONB).contains([lead_id])
    else:
        listed_ids = func.json_each(AuditLog.details, "$.lead_ids").table_valued("value")
        listed = select(listed_ids.c.value).where(listed_ids.c.value == lead_id).exists()
    return AuditLog.action.in_(BULK_ACTIONS) & listed


def _audit(session: Session, lead_id: int) -> list[AuditEntry]:
    rows = session.execute(
        select(AuditLog.created_at, AuditLog.action, AuditLog.details, User.name)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(or_((AuditLog.entity == "lead") & (AuditLog.entity_id == str(lead_id)),
                   _mentions(session, lead_id)))
        .order_by(AuditLog.id.desc())
    ).all()
    return [
        AuditEntry(r.created_at, r.name or "system", ACTION_WORDS.get(r.action, r.action.replace("_", " ")),
                   _audit_details(r.action, r.details or {}))
        for r in rows
    ]


def _audit_details(action: str, details: dict[str, Any]) -> str:
    if action == UPDATE_ACTION:
        before, after = details.get("before", {}), details.get("after", {})
        if "fields" in details:  # redacted by an erasure request: the names stay, the values went
            return "changed " + ", ".join(details["fields"])
        return "; ".join(f"{field}: {before.get(field) or '(empty)'} → {after.get(field) or '(empty)'}"
                         for field in after)
    if action in ("leads.tag", "leads.untag"):
        tags = details.get("tags") or [details.get("tag")]
        return ", ".join(str(t) for t in tags if t)
    if action == "reply":
        return "STOP: opted out" if details.get("stop") else ""
    return ""


def of_lead(lead_id: int) -> ColumnElement[bool]:
    """A WHERE clause on Message: the lead's messages, found through its enrolments (indexed)."""
    return Message.campaign_lead_id.in_(select(CampaignLead.id).where(CampaignLead.lead_id == lead_id))


def _messages(session: Session, lead_id: int, names: dict[int, str]) -> list[SentMessage]:
    messages = list(session.scalars(select(Message).where(of_lead(lead_id)).order_by(Message.id)))
    enrolment_ids = {m.campaign_lead_id for m in messages}
    calls = session.execute(
        select(LLMCall.campaign_lead_id, LLMCall.created_at, LLMCall.cost_microusd)
        .where(LLMCall.campaign_lead_id.in_(enrolment_ids))
        .order_by(LLMCall.created_at)
    ).all() if enrolment_ids else []
    costs: dict[int, int] = {}
    for call in calls:
        # A call is the cost of the first message of its enrolment written after it.
        for message in messages:
            if message.campaign_lead_id == call.campaign_lead_id and message.created_at >= call.created_at:
                costs[message.id] = costs.get(message.id, 0) + call.cost_microusd
                break
    return [
        SentMessage(names.get(m.campaign_id, f"campaign #{m.campaign_id}"), m.step + 1, m.channel,
                    m.to_address, m.subject, m.body, MESSAGE_WORDS.get(m.status, m.status), m.sent_at,
                    m.segments, costs.get(m.id, 0))
        for m in messages
    ]


def lead_detail(db: Database, actor: Actor, lead_id: int, *, history: bool = True) -> LeadDetail:
    """Everything about one lead of the actor's tenant; without its `history` (enrolments,
    messages, replies, audit: empty) its record alone, as the API answers it, in four reads."""
    actor.require(Permission.view_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        lead = load_lead(session, lead_id)
        enrolments = session.execute(
            select(CampaignLead, Campaign)
            .join(Campaign, Campaign.id == CampaignLead.campaign_id)
            .where(CampaignLead.lead_id == lead_id)
            .order_by(CampaignLead.id)
        ).all() if history else []
        names = {c.id: c.name for _e, c in enrolments}
        addresses = lead_addresses(lead.phone, lead.email, lead.alternates)
        suppressions = [
            SuppressionMatch(s.channel, s.address, s.reason, s.source, s.created_at)
            for s in session.scalars(
                select(Suppression)
                .where(or_(*[(Suppression.channel == c) & (Suppression.address == a) for c, a in addresses]))
                .order_by(Suppression.id)
            )
        ] if addresses else []
        import_label = None
        if lead.import_id is not None:
            found = session.get(LeadImport, lead.import_id)
            import_label = f"#{found.id} {found.file_name} ({found.created_at:%Y-%m-%d})" if found else None
        replies = [Reply(e.replied_at, c.name) for e, c in enrolments if e.replied_at]
        if lead.replied_at and not replies:
            replies.append(Reply(lead.replied_at, None))
        return LeadDetail(
            id=lead.id,
            name=lead_name(lead),
            fields={name: getattr(lead, name) for name in EDITABLE_FIELDS},
            alternates=list(lead.alternates or []),
            tags=sorted(t.tag for t in lead.tags),
            custom_fields=dict(lead.custom_fields or {}),
            import_label=import_label,
            opted_out_at=lead.opted_out_at,
            replied_at=lead.replied_at,
            created_at=lead.created_at,
            updated_at=lead.updated_at,
            suppressions=suppressions,
            enrolments=[
                Enrolment(c.id, c.name, c.status, c.channel, e.variant,
                          f"step {e.step + 1} of {max(1, len(c.steps or []))}", _state(e), e.replied_at,
                          e.cost_microusd or 0)
                for e, c in enrolments
            ],
            messages=_messages(session, lead_id, names) if history else [],
            replies=sorted(replies, key=lambda r: r.at) if history else [],
            audit=_audit(session, lead_id) if history else [],
        )


# How each problem the normaliser words begins, and the field it is about ("no phone or email"
# is about the phone and the email alike: it is given on the phone).
_PROBLEM_FIELDS = (("no phone or email", "phone"), ("phone", "phone"), ("email", "email"),
                   ("country", "country"), ("time zone", "time_zone"), ("website", "website"),
                   ("notes", "notes"))


def field_of_problem(problem: str) -> str | None:
    """The lead field a problem of `_normalised` is about, from how its message begins."""
    return next((name for start, name in _PROBLEM_FIELDS if problem.startswith(start)), None)


class LeadEditRefused(ValidationError):
    """An edit the import's rules refuse: every problem of the row, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    @property
    def field_errors(self) -> list[dict[str, str]]:
        """Each problem with the field it is about, for forms and the API's problem details."""
        return [{"field": field_of_problem(p) or "lead", "message": p} for p in self.problems]


class DuplicateLead(Conflict):
    """A new lead whose phone or email another lead of the tenant has already."""

    def __init__(self, field: str, value: str, lead_id: int) -> None:
        super().__init__(f"{field} {value} belongs to lead #{lead_id} already; edit that lead instead")
        self.field = field
        self.lead_id = lead_id


@dataclass(frozen=True)
class LeadEdited:
    changed: list[str]  # the field names that changed ("tags" among them)


def _normalised(db: Database, actor: Actor, values: Mapping[str, str | None]) -> dict[str, Any]:
    """The values as the import would store them, or LeadEditRefused with every problem."""
    limits = FieldLimits.from_settings(db.settings)
    notes = (values.get("notes") or "").strip()
    problems: list[str] = []
    if len(notes) > limits.note_chars:
        problems.append(
            f"notes may have at most {limits.note_chars:,} characters (these have {len(notes):,})"
        )
    frame = pd.DataFrame([{name: str(values.get(name) or "") for name in EDITABLE_FIELDS}], dtype=object)
    normaliser = LeadNormaliser(tenant_country(db, actor), {name: name for name in EDITABLE_FIELDS}, limits)
    outcomes = normaliser.rows(frame, [1])
    if not outcomes:
        raise LeadEditRefused(["no phone or email: a lead needs at least one"])
    outcome = outcomes[0]
    problems += outcome.problems
    # What an import accepts with a warning ("left empty"), an edit refuses: the person is here to fix it.
    problems += [w.split(";")[0] for w in outcome.warnings if not w.startswith("notes cut")]
    if problems:
        raise LeadEditRefused(problems)
    return {name: value for name, value in outcome.as_dict().items() if name in EDITABLE_FIELDS}


def update_lead(
    db: Database, actor: Actor, lead_id: int, values: Mapping[str, str | None], tags: str | None
) -> LeadEdited:
    """Save the lead's fields and tags as typed, normalised like an import; audited before/after.

    A field missing from `values` keeps its value; one given empty is cleared. Tags None keep theirs.
    """
    actor.require(Permission.manage_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        current = load_lead(session, lead_id)
        typed = {name: values[name] if name in values else getattr(current, name) for name in EDITABLE_FIELDS}
    clean = _normalised(db, actor, typed)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        lead = load_lead(session, lead_id)
        present = sorted(t.tag for t in lead.tags)
        wanted_tags = present if tags is None else normalise_tags(tags)
        for name, label in (("phone", "phone"), ("email", "email")):
            if clean[name] and clean[name] != getattr(lead, name):
                other = session.scalar(
                    select(Lead.id).where(getattr(Lead, name) == clean[name], Lead.id != lead_id)
                )
                if other is not None:
                    raise LeadEditRefused([f"{label} {clean[name]} belongs to another lead (#{other})"])
        before = {name: getattr(lead, name) for name in EDITABLE_FIELDS if getattr(lead, name) != clean[name]}
        after = {name: clean[name] for name in before}
        for name, value in after.items():
            setattr(lead, name, value)
        if sorted(wanted_tags) != present:
            before["tags"], after["tags"] = present, sorted(wanted_tags)
            session.execute(delete(LeadTag).where(LeadTag.lead_id == lead_id))
            session.expire(lead, ["tags"])
            if wanted_tags:
                session.execute(insert(LeadTag), [
                    {"tenant_id": actor.tenant_id, "lead_id": lead_id, "tag": t} for t in wanted_tags
                ])
        if after:
            record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action=UPDATE_ACTION,
                         entity="lead", entity_id=lead_id, details={"before": before, "after": after})
    return LeadEdited(changed=list(after))


def create_lead(
    db: Database, actor: Actor, values: Mapping[str, str | None], tags: str | Sequence[str] = ""
) -> int:
    """Add one lead by hand, normalised and checked exactly like an imported row (phones read in
    the tenant's country, emails by email-validator); a phone or email another lead has already
    is refused (DuplicateLead, naming that lead). Audited; returns the new lead's id."""
    actor.require(Permission.manage_leads)
    clean = _normalised(db, actor, {name: values.get(name) for name in EDITABLE_FIELDS})
    wanted_tags = normalise_tags(tags if isinstance(tags, str) else ",".join(tags))
    try:
        with db.session(tenant_id=actor.tenant_id) as session, session.begin():
            for name in ("phone", "email"):
                if clean[name]:
                    other = session.scalar(select(Lead.id).where(getattr(Lead, name) == clean[name]))
                    if other is not None:
                        raise DuplicateLead(name, clean[name], other)
            lead = Lead(**clean)
            session.add(lead)
            session.flush()
            if wanted_tags:
                session.execute(insert(LeadTag), [
                    {"tenant_id": actor.tenant_id, "lead_id": lead.id, "tag": t} for t in wanted_tags
                ])
            record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action=CREATE_ACTION,
                         entity="lead", entity_id=lead.id, details={"fields": sorted(
                             name for name, value in clean.items() if value is not None)})
            return int(lead.id)
    except IntegrityError:
        # Another request saved the same phone or email between the check and the insert.
        raise Conflict(
            "a lead with this phone or email was added at the same time; nothing was saved"
        ) from None
