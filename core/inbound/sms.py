"""An SMS that reached a tenant's number: stored once, and its keyword acted on at once.

STOP and its synonyms opt the sender out and suppress the number in the same transaction that
stores the message (core.replies), START and its synonyms take the STOP back (core.suppressions),
HELP answers with the tenant's name and contact. Each keyword gets one answer, which the caller
sends back as the provider's reply (TwiML); a provider's retry gets the same answer and acts
again on nothing. Any other text waits for the reply agent, unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.inbound.keywords import Keyword, KeywordMatch, keyword_of
from core.inbound.store import normalised_phone, record_inbound_in
from core.models import Channel, InboundMessage, Lead, Suppression, SuppressionReason, Tenant
from core.replies import record_stop_in
from core.suppressions import sms_keyword_opt_in_in

PROVIDER = "twilio"
# The class the reply agent gives a revocation: a STOP keyword is one, decided here.
UNSUBSCRIBE_CLASS = "unsubscribe"


@dataclass(frozen=True)
class SmsAnswer:
    inbound_id: int
    created: bool  # False: a retry of a message already stored
    lead_id: int | None
    keyword: Keyword | None  # the keyword acted on, if the message was one
    reply: str | None  # the text to answer with, if any


def receive_sms(
    db: Database,
    *,
    tenant_id: int,
    from_number: str,
    to_number: str,
    body: str,
    message_sid: str,
    now: datetime,
) -> SmsAnswer:
    """Store an inbound SMS and act on its keyword, in one transaction of the tenant."""
    with db.session(tenant_id=tenant_id) as session, session.begin():
        stored = record_inbound_in(
            session,
            tenant_id=tenant_id,
            channel=Channel.sms.value,
            from_address=from_number,
            to_address=to_number,
            body=body,
            provider=PROVIDER,
            provider_message_id=message_sid,
            received_at=now,
        )
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        if not stored.created:
            answered = row.classification_detail.get("answer") if row.classification_detail else None
            keyword = row.classification_detail.get("keyword") if row.classification_detail else None
            return SmsAnswer(
                stored.id, False, stored.lead_id, Keyword(keyword) if keyword else None, answered
            )
        match = keyword_of(body)
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        phone = normalised_phone(from_number, tenant.default_country)
        if match is None or phone is None:
            return SmsAnswer(stored.id, True, stored.lead_id, None, None)
        reply = _act(session, tenant, phone, match, row, now)
        if reply is None:  # a YES from a number that is not opted out: an ordinary reply
            return SmsAnswer(stored.id, True, stored.lead_id, None, None)
        row.classification_detail = {"keyword": match.keyword.value, "word": match.word, "answer": reply}
        if match.keyword is Keyword.opt_out:
            row.classification = UNSUBSCRIBE_CLASS
            row.classified_at = now
        # Answered automatically: nothing left for the reply agent or a person.
        row.processed_at = now
        row.handled_at = now
        return SmsAnswer(stored.id, True, stored.lead_id, match.keyword, reply)


def _act(
    session: Session, tenant: Tenant, phone: str, match: KeywordMatch, row: InboundMessage, now: datetime
) -> str | None:
    source = f"SMS keyword {match.word.upper()} (inbound message {row.id})"
    if match.keyword is Keyword.opt_out:
        record_stop_in(
            session, tenant_id=tenant.id, channel=Channel.sms, address=phone, source=source, now=now
        )
        return opted_out_text(tenant)
    if match.keyword is Keyword.opt_in:
        if match.ambiguous and not _stopped(session, phone):
            return None
        opt_in = sms_keyword_opt_in_in(session, tenant_id=tenant.id, phone=phone, source=source)
        return still_blocked_text(tenant) if opt_in.still_blocked else opted_in_text(tenant)
    return help_text(tenant)


def _stopped(session: Session, phone: str) -> bool:
    stop = session.scalar(
        select(Suppression.id)
        .where(
            Suppression.channel == Channel.sms.value,
            Suppression.address == phone,
            Suppression.reason == SuppressionReason.stop.value,
        )
        .limit(1)
    )
    opted_out = session.scalar(
        select(Lead.id).where(Lead.phone == phone, Lead.opted_out_at.is_not(None)).limit(1)
    )
    return stop is not None or opted_out is not None


def contact_of(tenant: Tenant) -> str | None:
    """How a recipient reaches the tenant: its email sender and postal address, when set."""
    parts = [part.strip() for part in (tenant.email_sender, tenant.postal_address) if part and part.strip()]
    return "; ".join(" ".join(part.split()) for part in parts) or None


def opted_out_text(tenant: Tenant) -> str:
    return (
        f"{tenant.name}: you are unsubscribed and will get no more messages from us. "
        "Reply START to resubscribe."
    )


def opted_in_text(tenant: Tenant) -> str:
    return f"{tenant.name}: you are subscribed again. Reply STOP to unsubscribe, HELP for help."


def still_blocked_text(tenant: Tenant) -> str:
    contact = contact_of(tenant)
    reach = f" Contact us: {contact}." if contact else ""
    return f"{tenant.name}: this number cannot be resubscribed by text.{reach}"


def help_text(tenant: Tenant) -> str:
    contact = contact_of(tenant)
    reach = f" Contact: {contact}." if contact else ""
    return f"{tenant.name}.{reach} Reply STOP to unsubscribe, START to resubscribe."
