"""Storing an inbound message once, with its tenant, lead and campaign found from its addresses.

Providers retry (Twilio re-posts a webhook it got no answer for, a mailbox poll sees a message
again), so a message is keyed by (tenant, provider, provider message id) and a repeat changes
nothing. The lead is found from the sender's address normalised as the import normalises it
(a phone in the tenant's default country to E.164, an email lower-cased), the campaign from the
outbound message it answers or else the lead's latest outbound message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db import Database, execute_core
from core.leads.normalise import PhoneNormaliser, normalise_email
from core.models import Channel, InboundMessage, Lead, Message, Tenant
from core.tenants import sms_sender_key


@dataclass(frozen=True)
class InboundRecorded:
    """The stored message's id; whether this call stored it (False: a repeat); its lead."""

    id: int
    created: bool
    lead_id: int | None


def _insert_once(make_insert: Any) -> Any:
    # A repeated provider id inserts nothing instead of raising, even when two retries race.
    table = InboundMessage.__table__
    return make_insert(table).on_conflict_do_nothing().returning(table.c.id)


_INSERT_ONCE = {"sqlite": _insert_once(sqlite_insert), "postgresql": _insert_once(postgresql_insert)}


def normalised_phone(raw: str, country: str) -> str | None:
    """A phone as leads store it (E.164), read in `country` when national; None if not a number."""
    return PhoneNormaliser(country)(raw).e164


def normalised_email(raw: str) -> str | None:
    """An email as leads store it, from a bare address or a header value ("Ann <ann@x.com>")."""
    _name, address = parseaddr(raw)
    return normalise_email(address or raw)[0]


def record_inbound(
    db: Database,
    *,
    tenant_id: int,
    channel: str,
    from_address: str,
    to_address: str,
    body: str,
    provider: str,
    provider_message_id: str,
    received_at: datetime,
    subject: str | None = None,
    in_reply_to_message_id: int | None = None,
) -> InboundRecorded:
    """Store the message in its own transaction (see `record_inbound_in`)."""
    with db.session(tenant_id=tenant_id) as session, session.begin():
        return record_inbound_in(
            session,
            tenant_id=tenant_id,
            channel=channel,
            from_address=from_address,
            to_address=to_address,
            body=body,
            provider=provider,
            provider_message_id=provider_message_id,
            received_at=received_at,
            subject=subject,
            in_reply_to_message_id=in_reply_to_message_id,
        )


def record_inbound_in(
    session: Session,
    *,
    tenant_id: int,
    channel: str,
    from_address: str,
    to_address: str,
    body: str,
    provider: str,
    provider_message_id: str,
    received_at: datetime,
    subject: str | None = None,
    in_reply_to_message_id: int | None = None,
) -> InboundRecorded:
    """Store the message in the caller's tenant transaction, once per provider id.

    A repeat (same tenant, provider and provider id) returns the stored row with created=False
    and changes nothing, so a caller acts on a message (opt-out, agent queue) only when created.
    """
    kind = Channel(channel)
    if not provider_message_id.strip():
        raise ValueError("an inbound message needs its provider's message id")
    existing = _stored(session, tenant_id, provider, provider_message_id)
    if existing is not None:
        return existing
    lead_id = find_lead(session, tenant_id=tenant_id, channel=kind, from_address=from_address)
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "lead_id": lead_id,
        "channel": kind.value,
        "from_address": from_address[:254],
        "to_address": to_address[:254],
        "subject": subject,
        "body": body,
        "provider": provider,
        "provider_message_id": provider_message_id,
        "in_reply_to_message_id": in_reply_to_message_id,
        "campaign_id": _campaign_of(session, lead_id, in_reply_to_message_id),
        "received_at": received_at,
        "created_at": received_at,
        "classification_detail": {},
    }
    dialect = session.get_bind().dialect.name
    new_id = execute_core(session, _INSERT_ONCE[dialect], row).scalar()
    if new_id is None:  # a concurrent retry stored it between the look-up and the insert
        raced = _stored(session, tenant_id, provider, provider_message_id)
        assert raced is not None
        return raced
    return InboundRecorded(id=new_id, created=True, lead_id=lead_id)


def _stored(
    session: Session, tenant_id: int, provider: str, provider_message_id: str
) -> InboundRecorded | None:
    found = session.execute(
        select(InboundMessage.id, InboundMessage.lead_id).where(
            InboundMessage.tenant_id == tenant_id,
            InboundMessage.provider == provider,
            InboundMessage.provider_message_id == provider_message_id,
        )
    ).first()
    return None if found is None else InboundRecorded(id=found.id, created=False, lead_id=found.lead_id)


def find_lead(session: Session, *, tenant_id: int, channel: Channel, from_address: str) -> int | None:
    """The tenant's lead whose own phone (SMS) or email is the sender's address, if any."""
    if channel is Channel.sms:
        country = session.scalar(select(Tenant.default_country).where(Tenant.id == tenant_id)) or "US"
        phone = normalised_phone(from_address, country)
        if phone is None:
            return None
        return session.scalar(select(Lead.id).where(Lead.tenant_id == tenant_id, Lead.phone == phone))
    email = normalised_email(from_address)
    if email is None:
        return None
    return session.scalar(select(Lead.id).where(Lead.tenant_id == tenant_id, Lead.email == email))


def _campaign_of(session: Session, lead_id: int | None, in_reply_to_message_id: int | None) -> int | None:
    if in_reply_to_message_id is not None:
        answered = session.scalar(select(Message.campaign_id).where(Message.id == in_reply_to_message_id))
        if answered is not None:
            return answered
    if lead_id is None:
        return None
    return session.scalar(
        select(Message.campaign_id)
        .where(Message.lead_id == lead_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )


def tenant_for_sms_number(db: Database, number: str) -> int | None:
    """The tenant whose SMS sender id is this number (Twilio's `To`), or None."""
    if not number.strip():
        return None
    key = sms_sender_key(number)
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(Tenant.id).where(Tenant.sms_sender_key == key))


def tenant_for_email_address(db: Database, address: str) -> int | None:
    """The tenant whose email sender is this address (a reply's `To`), or None when no tenant or
    more than one sends as it (sender emails are not unique across tenants)."""
    email = normalised_email(address)
    if email is None:
        return None
    with db.session(system=True, read_only=True) as session:
        found = session.scalars(
            select(Tenant.id).where(func.lower(Tenant.email_sender) == email).limit(2)
        ).all()
    return found[0] if len(found) == 1 else None
