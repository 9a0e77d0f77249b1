"""Emitting an event: one delivery row per enabled endpoint that wants it, in the cause's transaction.

A transactional outbox: the rows commit or roll back with the change they report, and the job
runner sends them later (core.webhooks.delivery), so no request or pipeline step waits on a
receiver. `emit` runs on every send, so with no endpoint it costs one indexed read and nothing more;
`data` may be a function, called only when some endpoint wants the event.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Campaign, DeliveryStatus, Message, WebhookDelivery, WebhookEndpoint


class EventType(enum.StrEnum):
    message_sent = "message.sent"
    message_delivered = "message.delivered"
    message_failed = "message.failed"
    reply_received = "reply.received"
    lead_opted_out = "lead.opted_out"
    campaign_started = "campaign.started"
    campaign_completed = "campaign.completed"
    budget_reached = "budget.reached"
    # Queued by the "send a test event" button for one endpoint, whatever it subscribed to.
    webhook_test = "webhook.test"


# What an endpoint may subscribe to (the test event is sent on request only).
SUBSCRIBABLE: tuple[str, ...] = tuple(t.value for t in EventType if t is not EventType.webhook_test)

EVENT_WORDS: dict[str, str] = {
    EventType.message_sent: "a message was sent",
    EventType.message_delivered: "the carrier delivered a message",
    EventType.message_failed: "a message failed",
    EventType.reply_received: "a reply was received and classified",
    EventType.lead_opted_out: "a lead opted out",
    EventType.campaign_started: "a campaign started",
    EventType.campaign_completed: "a campaign completed",
    EventType.budget_reached: "a budget was reached and its campaign paused",
    EventType.webhook_test: "a test event",
}

Data = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every time in a payload."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_event_id() -> str:
    """A Standard Webhooks message id: unique, kept by the delivery across its retries."""
    return f"msg_{uuid.uuid4().hex}"


def payload_of(event_type: str, data: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso_utc(now), "data": dict(data)}


def new_delivery(
    *, tenant_id: int, endpoint_id: int, event_type: str, payload: dict[str, Any], now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        event_id=new_event_id(),
        event_type=event_type,
        payload=payload,
        status=DeliveryStatus.pending.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def emit(
    session: Session, tenant_id: int, event_type: EventType | str, data: Data, *, now: datetime | None = None
) -> int:
    """Queue `event_type` for each of the tenant's enabled endpoints subscribed to it, in the
    caller's transaction; returns how many deliveries were queued."""
    kind = EventType(event_type).value
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
        )
    ).all()
    wanted = [row.id for row in endpoints if kind in (row.event_types or ())]
    if not wanted:
        return 0
    now = now or datetime.now(UTC)
    payload = payload_of(kind, data() if callable(data) else data, now)
    session.add_all(
        new_delivery(tenant_id=tenant_id, endpoint_id=endpoint_id, event_type=kind, payload=payload, now=now)
        for endpoint_id in wanted
    )
    return len(wanted)


def campaign_ref(session: Session, campaign_id: int | None) -> dict[str, Any] | None:
    """The campaign as payloads name it: its id and name."""
    if campaign_id is None:
        return None
    name = session.scalar(select(Campaign.name).where(Campaign.id == campaign_id))
    return {"id": campaign_id, "name": name}


def message_data(session: Session, message_id: int, **extra: Any) -> Callable[[], dict[str, Any]]:
    """The facts of a ledger row for a message.* payload, read only when an endpoint wants them
    (after the caller's UPDATE of the row, in its transaction: the status is the new one)."""

    def read() -> dict[str, Any]:
        row = session.execute(
            select(
                Message.id,
                Message.campaign_id,
                Message.campaign_lead_id,
                Message.lead_id,
                Message.channel,
                Message.step,
                Message.status,
                Message.provider,
                Message.provider_message_id,
                Message.sent_at,
                Message.delivered_at,
                Message.error,
            ).where(Message.id == message_id)
        ).one()
        return {
            "message_id": row.id,
            "campaign": campaign_ref(session, row.campaign_id),
            "campaign_lead_id": row.campaign_lead_id,
            "lead_id": row.lead_id,
            "channel": row.channel,
            "step": row.step + 1,
            "status": row.status,
            "provider": row.provider,
            "provider_message_id": row.provider_message_id,
            "sent_at": iso_utc(row.sent_at) if row.sent_at else None,
            "delivered_at": iso_utc(row.delivered_at) if row.delivered_at else None,
            "error": row.error,
            **extra,
        }

    return read


def lead_opted_out_data(
    lead_id: int, *, now: datetime, channel: str | None, reason: str | None
) -> dict[str, Any]:
    """A `lead.opted_out` payload's data (the address is not in it: the lead's id names it)."""
    return {
        "lead_id": lead_id,
        "channel": channel,
        "reason": None if reason is None else str(reason),
        "opted_out_at": iso_utc(now),
    }
