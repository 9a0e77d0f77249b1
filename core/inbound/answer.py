"""A person's answer to a reply: one message on the lead's channel, through the pipeline's checks and ledger.

Refused, with the reason, when the lead opted out, the address is suppressed, the recipient's
send window is closed or the text fails the outreach guard. The answer is a ledger row of the
campaign the reply answers (`step` -1: no step of the sequence; keyed by the reply, so one reply
gets one answer however often the button is pressed), written `sending` before the provider is
called; the outbox, a table of this database, is written in that same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from core.audit import record_audit
from core.channels.base import NotSent, OutgoingMessage, Sender
from core.channels.measured import measured_send
from core.channels.registry import senders_from_settings
from core.compliance.send_rules import recipient_deferral
from core.compliance.suppression import suppression_reason
from core.db import Database
from core.errors import Conflict, LeadflowError, NotFound, ProviderAccountRefused, ValidationError
from core.inbound.answer_rules import answer_subject, check_answer
from core.models import Campaign, InboundMessage, Lead, Message, MessageStatus, Tenant
from core.permissions import Actor, Permission
from core.pipeline.drafting import run_secrets
from core.pipeline.run_inputs import address_of, lead_data, tenant_data
from core.pipeline.state import CampaignData
from core.tenants import in_zone, tenant_time_zone

ANSWER_STEP = -1  # a ledger row that is no step of the campaign's sequence


@dataclass(frozen=True)
class AnswerSent:
    message_id: int
    provider_message_id: str


def answer_key(inbound_id: int) -> str:
    return f"answer-in{inbound_id}"


@dataclass(frozen=True)
class _Prepared:
    outgoing: OutgoingMessage
    campaign_id: int
    lead_id: int


def _prepare(db: Database, actor: Actor, inbound_id: int, text: str, now: datetime) -> _Prepared:
    """Every check, in one read: the reply, its lead and campaign, the window, the guard."""
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        reply = session.get(InboundMessage, inbound_id)
        if reply is None:
            raise NotFound(f"reply {inbound_id} does not exist")
        lead = session.get(Lead, reply.lead_id) if reply.lead_id else None
        campaign = session.get(Campaign, reply.campaign_id) if reply.campaign_id else None
        tenant = session.get(Tenant, actor.tenant_id)
        if lead is None or campaign is None or tenant is None:
            raise ValidationError("this reply matches no lead of a campaign: answer it from your own "
                                  "mail or phone")
        if lead.opted_out_at is not None:
            raise Conflict("the lead opted out: no message may be sent to it")
        channel = reply.channel
        address = address_of(lead_data(lead), channel)
        if not address:
            missing = "phone number" if channel == "sms" else "email address"
            raise ValidationError(f"the lead has no {missing}")
        if reason := suppression_reason(session, channel=channel, address=address):
            raise Conflict(f"{address} is on the suppression list ({reason}): nothing may be sent to it")
        tenant_values, lead_values = tenant_data(tenant), lead_data(lead)
        campaign_values = CampaignData.of(campaign)
    if waits := recipient_deferral(tenant_values, campaign_values.send_window, lead_values, now):
        zone = tenant_time_zone(tenant_values.time_zone, tenant_values.default_country)
        opens = in_zone(waits.until, zone)
        raise Conflict(f"not sent: {waits.reason}; the recipient's window opens at {opens}")
    if not text.strip():
        raise ValidationError("write the answer first")
    subject = answer_subject(channel, reply.subject)
    checked = check_answer(db.settings, tenant_values, campaign_values, lead_values, channel=channel,
                           text=text, subject=subject, canary=run_secrets()[0])
    if not checked.passed:
        raise ValidationError(f"the answer was not sent: {'; '.join(checked.problems)}")
    outgoing = OutgoingMessage(
        tenant_id=actor.tenant_id, campaign_id=campaign_values.id, channel=channel, to_address=address,
        body=checked.body, subject=subject, idempotency_key=answer_key(inbound_id),
        from_address=tenant_values.email_sender if channel == "email" else tenant_values.sms_sender_id,
    )
    return _Prepared(outgoing, campaign_values.id, lead_values["id"])


def _ledger_row(
    db: Database, actor: Actor, prepared: _Prepared, sender: Sender, now: datetime
) -> int:
    """The `sending` row's id (a failed one is reused), committed before the provider is called."""
    message = prepared.outgoing
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = session.scalar(select(Message).where(Message.idempotency_key == message.idempotency_key)
                             .with_for_update())
        if row is not None and row.status != MessageStatus.failed.value:
            raise Conflict("this reply was already answered" if row.status in ("sent", "delivered")
                           else f"an answer to this reply is already {row.status}: check it before "
                           "sending again")
        if row is None:
            row = Message(tenant_id=actor.tenant_id, campaign_id=prepared.campaign_id,
                          campaign_lead_id=None, lead_id=prepared.lead_id, step=ANSWER_STEP,
                          channel=message.channel, to_address=message.to_address,
                          idempotency_key=message.idempotency_key, body="")
            session.add(row)
        row.subject, row.body, row.provider = message.subject, message.body, sender.name
        row.status, row.error, row.created_at = MessageStatus.sending.value, None, now
        session.flush()
        return row.id


def _finish(db: Database, actor: Actor, inbound_id: int, message_id: int, now: datetime,
            *, provider_id: str | None = None, failed: str | None = None) -> None:
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = session.get(Message, message_id)
        assert row is not None
        if failed is not None:
            row.status, row.error = (MessageStatus.failed.value if failed.startswith("not sent")
                                     else MessageStatus.unknown.value), failed
        else:
            row.status, row.sent_at = MessageStatus.sent.value, row.sent_at or now
            row.provider_message_id = provider_id
            reply = session.get(InboundMessage, inbound_id)
            if reply is not None:
                reply.handled_at, reply.handled_by_user_id = now, actor.user_id
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="reply_answered",
                     entity="inbound_message", entity_id=inbound_id,
                     details={"message_id": message_id, "status": row.status})


def send_answer(
    db: Database,
    actor: Actor,
    inbound_id: int,
    text: str,
    *,
    senders: Mapping[str, Sender] | None = None,
    now: datetime | None = None,
) -> AnswerSent:
    """Send a person's answer to a reply on the lead's channel; the reply is then handled."""
    actor.require(Permission.handle_replies)
    now = now or datetime.now(UTC)
    prepared = _prepare(db, actor, inbound_id, text, now)
    sender = (senders or senders_from_settings(db.settings, db))[prepared.outgoing.channel]
    # The `sending` row is committed first, then the provider is called, as for a campaign's send.
    message_id = _ledger_row(db, actor, prepared, sender, now)
    try:
        provider_id = measured_send(sender, prepared.outgoing).provider_message_id
    except (NotSent, ProviderAccountRefused) as exc:
        reason = f"not sent: {getattr(exc, 'reason', None) or exc}"
        _finish(db, actor, inbound_id, message_id, now, failed=reason)
        raise LeadflowError(reason) from exc
    except Exception as exc:
        reason = (f"the provider call failed and may or may not have sent the answer "
                  f"({type(exc).__name__}); check with the provider before sending again")
        _finish(db, actor, inbound_id, message_id, now, failed=reason)
        raise LeadflowError(reason) from exc
    _finish(db, actor, inbound_id, message_id, now, provider_id=provider_id)
    return AnswerSent(message_id, provider_id)
