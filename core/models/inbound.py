"""Messages that come back: replies and opt-outs by SMS webhook or from the mailbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, TenantOwned, utcnow


class InboundMessage(TenantOwned, Base):
    """A message a lead (or anyone) sent to a tenant: an SMS by webhook, an email from the mailbox.

    Stored once per provider id (providers retry); the reply agent classifies it, suggests an
    answer, and a person handles it in the Inbox.
    """

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    from_address: Mapped[str] = mapped_column(String(254))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(16))  # twilio | imap | manual
    # Twilio's MessageSid, or the email's Message-ID without the angle brackets.
    provider_message_id: Mapped[str] = mapped_column(String(255))
    # The outbound message this one answers, when known.
    in_reply_to_message_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    received_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    classification: Mapped[str | None] = mapped_column(String(24))
    # The evidence behind the class: matched words, dates, the person named...
    classification_detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classified_at: Mapped[datetime | None]
    suggested_reply: Mapped[str | None] = mapped_column(Text)
    # The reply agent claimed it (core.inbound.queue); done when classified_at is set too.
    processed_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    handled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("tenant_id", "provider", "provider_message_id"),
        Index("ix_inbound_messages_tenant_received", "tenant_id", "received_at"),
        Index("ix_inbound_messages_lead_received", "lead_id", "received_at"),
        # The reply agent's queue: a tenant's messages not processed yet.
        Index("ix_inbound_messages_tenant_processed", "tenant_id", "processed_at"),
    )
