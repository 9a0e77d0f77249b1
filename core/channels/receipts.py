"""Delivery receipts: a provider's word on a sent message, applied to the send ledger.

Receipts arrive late, twice and out of order (Twilio posts queued, sent, delivered or
undelivered, each possibly retried), so the ledger only ever moves forward: `STATUS_RANK` is the
one order, a receipt never lowers a message's rank, and the first final word (delivered,
undelivered, failed) stays. The pipeline's own write after a send goes through the same order
(`status_not_lowered`), so a receipt that beats the pipeline's commit is not overwritten.

A permanent failure says the number itself cannot take SMS (unknown, landline, blocked,
unreachable): the number is suppressed as a bounce and the lead falls back to its next
alternate (core.leads.fallback). Twilio's 21610 says the person texted STOP to this sender: that
is the person's word, recorded as a STOP through core.replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, literal, or_, select, update

from core.compliance.suppression import suppress_address
from core.db import Database
from core.leads.fallback import fall_back_from_bounces
from core.logs import get_logger
from core.models import Channel, Message, MessageStatus, SuppressionReason
from core.replies import record_stop_in
from core.webhooks.events import EventType, emit, message_data

log = get_logger(__name__)

# The one order of ledger statuses: a message never moves to a lower rank. The final ones share
# the top rank, so the first final word on a message stays.
STATUS_RANK: dict[str, int] = {
    MessageStatus.sending.value: 0,
    MessageStatus.unknown.value: 0,
    MessageStatus.sent.value: 1,
    MessageStatus.delivered.value: 2,
    MessageStatus.undelivered.value: 2,
    MessageStatus.failed.value: 2,
}

# Twilio's message statuses (the `MessageStatus` of a status callback) as ledger statuses.
TWILIO_STATUSES: dict[str, str] = {
    "accepted": MessageStatus.sending.value,
    "scheduled": MessageStatus.sending.value,
    "queued": MessageStatus.sending.value,
    "sending": MessageStatus.sending.value,
    "sent": MessageStatus.sent.value,
    "delivered": MessageStatus.delivered.value,
    "read": MessageStatus.delivered.value,
    "undelivered": MessageStatus.undelivered.value,
    "failed": MessageStatus.failed.value,
    "canceled": MessageStatus.failed.value,
}

# Twilio error codes that condemn the number, not the message (twilio.com/docs/api/errors).
# 30007 (carrier filtering) is about the content or the sender, so it does not count here.
NUMBER_UNUSABLE_CODES: dict[int, str] = {
    30003: "unreachable destination handset",
    30004: "message blocked by the recipient or the carrier",
    30005: "unknown destination handset (the number does not exist)",
    30006: "landline or unreachable carrier",
}
# The recipient has opted out of this sender (they texted STOP).
UNSUBSCRIBED_CODE = 21610
ERROR_WORDS: dict[int, str] = {
    **NUMBER_UNUSABLE_CODES,
    UNSUBSCRIBED_CODE: "the recipient unsubscribed (texted STOP to this sender)",
    30001: "queue overflow",
    30002: "account suspended",
    30007: "message filtered by the carrier",
    30008: "unknown error",
    30034: "sender number not registered (A2P 10DLC)",
}


def _rank_of(column: Any) -> ColumnElement[int]:
    return case({status: rank for status, rank in STATUS_RANK.items()}, value=column, else_=0)


def status_not_lowered(column: Any, new_status: Any) -> ColumnElement[str]:
    """SQL for `SET status = ...` that keeps the current status when it ranks above the new one."""
    return case((_rank_of(column) > _rank_of(new_status), column), else_=new_status)


def _lower_ranked(status: str) -> list[str]:
    rank = STATUS_RANK[status]
    return [name for name, other in STATUS_RANK.items() if other < rank]


@dataclass(frozen=True)
class ReceiptApplied:
    """What a receipt did: the message it named (None: not ours), whether it changed it."""

    message_id: int | None
    tenant_id: int | None
    status: str | None  # the ledger status after the receipt
    changed: bool
    number_unusable: bool = False
    unsubscribed: bool = False


NOT_OURS = ReceiptApplied(None, None, None, changed=False)


# The delivery receipts a webhook reports (`sent` is reported by the pipeline's own send).
RECEIPT_EVENTS: dict[str, EventType] = {
    MessageStatus.delivered.value: EventType.message_delivered,
    MessageStatus.undelivered.value: EventType.message_failed,
    MessageStatus.failed.value: EventType.message_failed,
}


def error_text(provider: str, code: int | None) -> str | None:
    if code is None:
        return None
    words = ERROR_WORDS.get(code)
    return f"{provider} error {code}" + (f": {words}" if words else "")


def apply_twilio_receipt(
    db: Database,
    *,
    message_sid: str,
    twilio_status: str,
    error_code: int | None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ReceiptApplied:
    """Apply one Twilio status callback to the ledger; idempotent and safe out of order.

    The message is found by the ledger's idempotency key when the callback URL carries it (the
    receipt may beat the pipeline's write of the SID), else by the SID. A status Twilio does not
    document changes nothing.
    """
    status = TWILIO_STATUSES.get(twilio_status.strip().lower())
    if status is None or not message_sid:
        return NOT_OURS
    now = now or datetime.now(UTC)
    values: dict[str, Any] = {
        "status": status,
        "provider_message_id": case(
            (Message.provider_message_id.is_(None), literal(message_sid)),
            else_=Message.provider_message_id,
        ),
    }
    if status == MessageStatus.delivered.value:
        values["delivered_at"] = now
    if STATUS_RANK[status] >= STATUS_RANK[MessageStatus.sent.value]:
        values["sent_at"] = case((Message.sent_at.is_(None), literal(now)), else_=Message.sent_at)
    if status in (MessageStatus.undelivered.value, MessageStatus.failed.value):
        values["error"] = error_text("Twilio", error_code) or f"Twilio reported the message {twilio_status}"
    with db.session(system=True) as session, session.begin():
        # One statement on the usual path: the message is ours and the receipt moves it forward.
        changed = session.execute(
            update(Message)
            .where(
                _names_the_message(message_sid, idempotency_key),
                Message.status.in_(_lower_ranked(status)),
            )
            .values(values)
            .returning(Message.id, Message.tenant_id, Message.to_address)
            .execution_options(synchronize_session=False)
        ).first()
        if changed is not None and (kind := RECEIPT_EVENTS.get(status)) is not None:
            # The receipt moved the message forward: reported once, whatever retries Twilio makes.
            emit(session, changed.tenant_id, kind, message_data(session, changed.id), now=now)
        if changed is None:
            found = session.execute(
                select(Message.id, Message.tenant_id, Message.status)
                .where(_names_the_message(message_sid, idempotency_key))
                .limit(1)
            ).first()
            if found is None:
                log.info("twilio_receipt_for_unknown_message", message_sid=message_sid)
                return NOT_OURS
            return ReceiptApplied(found.id, found.tenant_id, found.status, changed=False)
    message_id, tenant_id = changed.id, changed.tenant_id
    unusable = status in (MessageStatus.undelivered.value, MessageStatus.failed.value) and (
        error_code in NUMBER_UNUSABLE_CODES or error_code == UNSUBSCRIBED_CODE
    )
    if unusable:
        _condemn_number(db, tenant_id, changed.to_address, error_code, message_id, now)
    return ReceiptApplied(
        message_id,
        tenant_id,
        status,
        changed=True,
        number_unusable=unusable and error_code != UNSUBSCRIBED_CODE,
        unsubscribed=unusable and error_code == UNSUBSCRIBED_CODE,
    )


def _names_the_message(message_sid: str, idempotency_key: str | None) -> ColumnElement[bool]:
    """The SMS ledger row a receipt is about: by the key of its callback URL (a row whose SID is
    not written yet, or is this one: a key with another SID is not ours), or by the SID."""
    by_sid = Message.provider_message_id == message_sid
    if idempotency_key:
        by_key = and_(
            Message.idempotency_key == idempotency_key,
            or_(Message.provider_message_id.is_(None), by_sid),
        )
        return and_(Message.channel == Channel.sms.value, or_(by_key, by_sid))
    return and_(Message.channel == Channel.sms.value, by_sid)


def _condemn_number(
    db: Database, tenant_id: int, number: str, code: int | None, message_id: int, now: datetime
) -> None:
    """The number cannot take SMS: suppress it and move the lead to its alternate; or, for an
    unsubscribed recipient, record their STOP."""
    source = f"{error_text('Twilio', code)} (message {message_id})"
    with db.session(tenant_id=tenant_id) as session, session.begin():
        if code == UNSUBSCRIBED_CODE:
            record_stop_in(
                session, tenant_id=tenant_id, channel=Channel.sms, address=number, source=source, now=now
            )
            return
        suppress_address(
            session,
            tenant_id=tenant_id,
            channel=Channel.sms.value,
            address=number,
            reason=SuppressionReason.bounce,
            source=source[:255],
        )
        fall_back_from_bounces(
            session, tenant_id=tenant_id, channel=Channel.sms, bounced=[number], user_id=None
        )
