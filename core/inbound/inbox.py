"""The Inbox's services: replies with their classification, conversations, handling, assignment, referrals.

Every role that may open the Inbox reads it (Permission.view_inbox); answering, assigning, marking
handled and adding a referred person as a lead need Permission.handle_replies (managers and up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, aliased

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.inbound.classify import ReplyClass
from core.inbound.store import normalised_email, normalised_phone
from core.models import Campaign, InboundMessage, Lead, Message, Role, Tenant, User
from core.permissions import Actor, Permission

# Who may be handed a reply: the roles that may answer one.
ASSIGNABLE_ROLES = (Role.manager.value, Role.admin.value, Role.owner.value)


@dataclass(frozen=True)
class InboxFilter:
    classification: str | None = None
    campaign_id: int | None = None
    handled: bool | None = False  # False: waiting for a person (the default); None: all


@dataclass(frozen=True)
class InboxItem:
    id: int
    lead_id: int | None
    lead_name: str
    channel: str
    from_address: str
    subject: str | None
    body: str
    received_at: datetime
    campaign_id: int | None
    campaign_name: str | None
    classification: str | None  # None: the agent has not read it yet
    detail: dict[str, Any]
    suggested_reply: str | None
    handled_at: datetime | None
    handled_by: str | None  # None with handled_at set: settled by the agent
    assigned_user_id: int | None
    assigned_to: str | None

    @property
    def evidence(self) -> list[str]:
        return [str(e) for e in self.detail.get("evidence") or []]

    @property
    def remind_at(self) -> datetime | None:
        value = self.detail.get("remind_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def person(self) -> dict[str, str] | None:
        person = self.detail.get("person")
        return dict(person) if isinstance(person, dict) else None

    @property
    def referral_status(self) -> str | None:
        referral = self.detail.get("referral")
        return str(referral.get("status")) if isinstance(referral, dict) else None


@dataclass(frozen=True)
class ConversationEntry:
    direction: str  # "out" (a message we sent) or "in" (a reply)
    channel: str
    at: datetime
    body: str
    subject: str | None = None
    status: str | None = None  # out: the delivery status; in: the classification
    inbound_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _filters(view: InboxFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if view.classification:
        where.append(InboundMessage.classification == view.classification)
    if view.campaign_id is not None:
        where.append(InboundMessage.campaign_id == view.campaign_id)
    if view.handled is True:
        where.append(InboundMessage.handled_at.is_not(None))
    elif view.handled is False:
        where.append(InboundMessage.handled_at.is_(None))
    return where


def _name(first: str | None, last: str | None, fallback: str) -> str:
    return " ".join(p for p in (first, last) if p) or fallback


def list_inbox(
    db: Database, actor: Actor, view: InboxFilter, *, limit: int = 20, offset: int = 0,
    after: tuple[datetime, int] | None = None,
) -> list[InboxItem]:
    """The replies matching the filter, newest first; `after` (the last one's received_at and id)
    pages by key, so replies arriving meanwhile never shift a page."""
    actor.require(Permission.view_inbox)
    where = _filters(view)
    if after is not None:
        at, last_id = after
        where.append(or_(InboundMessage.received_at < at,
                         (InboundMessage.received_at == at) & (InboundMessage.id < last_id)))
    handler, assignee = aliased(User), aliased(User)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            select(InboundMessage, Lead.first_name, Lead.last_name, Campaign.name,
                   handler.name, assignee.name)
            .outerjoin(Lead, Lead.id == InboundMessage.lead_id)
            .outerjoin(Campaign, Campaign.id == InboundMessage.campaign_id)
            .outerjoin(handler, handler.id == InboundMessage.handled_by_user_id)
            .outerjoin(assignee, assignee.id == InboundMessage.assigned_user_id)
            .where(*where)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(limit).offset(offset)
        ).all()
        return [
            InboxItem(
                id=m.id, lead_id=m.lead_id, lead_name=_name(first, last, m.from_address), channel=m.channel,
                from_address=m.from_address, subject=m.subject, body=m.body, received_at=m.received_at,
                campaign_id=m.campaign_id, campaign_name=campaign, classification=m.classification,
                detail=dict(m.classification_detail or {}), suggested_reply=m.suggested_reply,
                handled_at=m.handled_at, handled_by=handled_by, assigned_user_id=m.assigned_user_id,
                assigned_to=assigned_to,
            )
            for m, first, last, campaign, handled_by, assigned_to in rows
        ]


def count_inbox(db: Database, actor: Actor, view: InboxFilter) -> int:
    actor.require(Permission.view_inbox)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return int(session.scalar(select(func.count(InboundMessage.id)).where(*_filters(view))) or 0)


def replies_waiting(db: Database, actor: Actor) -> int:
    """Replies no person has handled yet (the Overview's figure)."""
    return count_inbox(db, actor, InboxFilter(handled=False))


def conversation(db: Database, actor: Actor, lead_id: int) -> list[ConversationEntry]:
    """Every message sent to the lead and every reply from it, oldest first."""
    actor.require(Permission.view_inbox)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        sent = session.execute(
            select(Message.channel, Message.sent_at, Message.created_at, Message.subject, Message.body,
                   Message.status, Message.error, Message.step)
            .where(Message.lead_id == lead_id)
        ).all()
        received = session.execute(
            select(InboundMessage.id, InboundMessage.channel, InboundMessage.received_at,
                   InboundMessage.subject, InboundMessage.body, InboundMessage.classification)
            .where(InboundMessage.lead_id == lead_id)
        ).all()
    entries = [
        ConversationEntry("out", m.channel, m.sent_at or m.created_at, m.body, m.subject, m.status,
                          details={"error": m.error, "answer": m.step < 0})
        for m in sent
    ]
    entries += [
        ConversationEntry("in", r.channel, r.received_at, r.body, r.subject, r.classification,
                          inbound_id=r.id)
        for r in received
    ]
    return sorted(entries, key=lambda e: e.at)


def _reply(session: Session, inbound_id: int) -> InboundMessage:
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"reply {inbound_id} does not exist")
    return row


def set_handled(db: Database, actor: Actor, inbound_id: int, *, handled: bool = True,
                now: datetime | None = None) -> None:
    """Mark a reply handled by the actor (or waiting again)."""
    actor.require(Permission.handle_replies)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _reply(session, inbound_id)
        row.handled_at = (now or datetime.now(UTC)) if handled else None
        row.handled_by_user_id = actor.user_id if handled else None
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="reply_handled" if handled else "reply_reopened", entity="inbound_message",
                     entity_id=inbound_id, details={})


def assignable_users(db: Database, actor: Actor) -> dict[int, str]:
    """The active users a reply may be handed to: id -> name."""
    actor.require(Permission.view_inbox)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            select(User.id, User.name).where(User.active.is_(True), User.role.in_(ASSIGNABLE_ROLES))
            .order_by(User.name)
        ).all()
    return {r.id: r.name for r in rows}


def assign_reply(db: Database, actor: Actor, inbound_id: int, user_id: int | None) -> None:
    """Hand a reply to a user (None: to no one)."""
    actor.require(Permission.handle_replies)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _reply(session, inbound_id)
        if user_id is not None:
            role = session.scalar(select(User.role).where(User.id == user_id, User.active.is_(True)))
            if role not in ASSIGNABLE_ROLES:
                raise ValidationError("a reply can be handed only to an active manager, admin or owner")
        row.assigned_user_id = user_id
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="reply_assigned",
                     entity="inbound_message", entity_id=inbound_id, details={"user_id": user_id})


def _referred_addresses(
    session: Session, tenant_id: int, person: dict[str, str]
) -> tuple[str | None, str | None]:
    country = session.scalar(select(Tenant.default_country).where(Tenant.id == tenant_id)) or "US"
    phone = normalised_phone(person["phone"], country) if person.get("phone") else None
    email = normalised_email(person["email"]) if person.get("email") else None
    return phone, email


def add_referred_lead(db: Database, actor: Actor, inbound_id: int) -> int:
    """Add the person a referral names as a lead (or find the lead they already are); its id."""
    actor.require(Permission.handle_replies)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _reply(session, inbound_id)
        detail = dict(row.classification_detail or {})
        person = detail.get("person")
        if row.classification != ReplyClass.referral.value or not isinstance(person, dict):
            raise ValidationError("this reply names no one to add as a lead")
        if (detail.get("referral") or {}).get("status") == "added":
            raise Conflict("the person this reply names was already added as a lead")
        phone, email = _referred_addresses(session, actor.tenant_id, person)
        if not (phone or email):
            raise ValidationError(
                f"the reply names {person.get('name') or 'someone'} but no usable phone or email: add "
                "the lead by hand once you have one")
        found = session.scalar(select(Lead.id).where(or_(
            *([Lead.phone == phone] if phone else []), *([Lead.email == email] if email else [])
        )).limit(1))
        referrer = session.get(Lead, row.lead_id) if row.lead_id else None
        if found is None:
            first, _, last = (person.get("name") or "").partition(" ")
            referred_by = (_name(referrer.first_name, referrer.last_name, row.from_address)
                           if referrer else row.from_address)
            lead = Lead(first_name=first or None, last_name=last or None, phone=phone, email=email,
                        company=referrer.company if referrer else None,
                        notes=f"Referred by {referred_by} (reply {row.id})")
            session.add(lead)
            session.flush()
            found = lead.id
        detail["referral"] = {"status": "added", "lead_id": found}
        row.classification_detail = detail
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="referral_added",
                     entity="lead", entity_id=found, details={"inbound_message_id": inbound_id})
        return int(found)
