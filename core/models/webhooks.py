"""Outgoing webhooks: the endpoints a tenant registers, and one delivery row per event and endpoint.

A delivery row is written in the transaction of the change it reports (a transactional outbox) and
sent later by the job runner, which claims due rows with a lease; its id is the Standard Webhooks
`webhook-id`, the same on every attempt, so a receiver can drop a retry it has already seen.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, TenantOwned, utcnow


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its next attempt (the first or a retry)
    sending = "sending"  # claimed by a worker, lease until lease_expires_at
    delivered = "delivered"  # the endpoint answered 2xx
    failed = "failed"  # no 2xx within the retry period, or the endpoint is gone


class WebhookEndpoint(TenantOwned, Base):
    """A URL of the tenant's that receives the event types it subscribed to, signed with its secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(255), default="")
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Standard Webhooks secrets ("whsec_" + base64). The current one signs; the previous one is
    # still listed in `webhook-signature` until it expires, so a receiver can switch at leisure.
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (Index("ix_webhook_endpoints_tenant_enabled", "tenant_id", "enabled"),)


class WebhookDelivery(TenantOwned, Base):
    """One event for one endpoint, from its emission to its delivery or its final failure."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The Standard Webhooks `webhook-id` ("msg_..."): one per event and endpoint, kept across retries.
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_response_ms: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        # The runner's claim: due pending rows, and sending rows whose lease expired.
        Index("ix_webhook_deliveries_status_next_attempt", "status", "next_attempt_at"),
        # The delivery log of one endpoint, newest first (keyset pagination on created_at, id).
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_deliveries_tenant_created", "tenant_id", "created_at"),
    )
