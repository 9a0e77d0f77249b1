"""Campaigns, their enrolments, the send ledger and outbox, model calls and events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.campaign_shape import MAX_SMS_SEGMENTS, STEPS_JSON, TEMPERATURE, VARIANTS_JSON, Step, Variant
from core.models.base import (
    DEFAULT_REPLY_STOP_CLASSES,
    FIRST_TOUCH_SENT,
    Base,
    BigId,
    CampaignStatus,
    EnrolmentStatus,
    MessageStatus,
    TenantOwned,
    utcnow,
)


class Campaign(TenantOwned, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.draft.value)
    # Why the campaign is paused or failed ("budget cap reached"), shown in the dashboard.
    status_reason: Mapped[str | None] = mapped_column(Text)
    system_prompt: Mapped[str] = mapped_column(Text)
    # A/B variants, stored as [{"name": "A", "prompt": "..."}, ...]; empty means one variant "A".
    variants: Mapped[tuple[Variant, ...]] = mapped_column(VARIANTS_JSON, default=tuple)
    model: Mapped[str] = mapped_column(String(64))
    temperature: Mapped[float] = mapped_column(Float, default=TEMPERATURE.default)
    # {"tags": [...], "import_ids": [...], "industries": [...], "countries": [...]}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Stored as [{"delay_hours": 0, "prompt": "..."}, {"delay_hours": 72, "prompt": "follow-up ..."}]
    steps: Mapped[tuple[Step, ...]] = mapped_column(STEPS_JSON, default=tuple)
    research_web: Mapped[bool] = mapped_column(Boolean, default=False)
    max_sms_segments: Mapped[int] = mapped_column(Integer, default=MAX_SMS_SEGMENTS.default)
    scheduled_at: Mapped[datetime | None]
    # Overrides of the tenant's send window: {"start": "09:00", "end": "17:00", "weekdays_only": true}
    send_window: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sends_per_minute: Mapped[int | None] = mapped_column(Integer)
    budget_cap_microusd: Mapped[int | None] = mapped_column(BigInteger)
    # Settled model spend, kept by the call gate so the budget check never sums llm_calls.
    spent_microusd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Provider failures in a row, across workers; any success resets it (see the pipeline's store).
    consecutive_provider_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which reply classes stop this campaign's sequence for the lead (the reply agent's act).
    reply_stop_classes: Mapped[list[Any]] = mapped_column(
        default=lambda: list(DEFAULT_REPLY_STOP_CLASSES),
        server_default=json.dumps(list(DEFAULT_REPLY_STOP_CLASSES)),
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Set when a finished campaign is archived: hidden from the default lists, restorable.
    archived_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_campaigns_tenant_status", "tenant_id", "status"),)


class CampaignLead(TenantOwned, Base):
    """The enrolment of one lead in one campaign, and the unit of work of the runner."""

    __tablename__ = "campaign_leads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(32), default="A")
    step: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=EnrolmentStatus.pending.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    next_action_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    # [{"fact": "...", "source": "lead.title" | "playbook" | "https://..."}]
    research: Mapped[list[Any]] = mapped_column(default=list)
    draft_subject: Mapped[str | None] = mapped_column(Text)
    draft_body: Mapped[str | None] = mapped_column(Text)
    # {"passed": bool, "problems": [...], "segments": n, "encoding": "GSM-7"}
    guard_result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(36))
    cost_microusd: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    replied_at: Mapped[datetime | None]
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set when a reviewer approves the draft of the current step; the pipeline then resumes at
    # send without composing again (it survives lease recovery). Cleared when the step completes.
    approved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("campaign_id", "lead_id"),
        Index("ix_campaign_leads_campaign_status", "campaign_id", "status"),
        Index("ix_campaign_leads_status_next_action", "status", "next_action_at"),
        Index("ix_campaign_leads_lease_expires", "lease_expires_at"),
        # INCLUDE (dashboard): counts the opted-out leads' enrolments per campaign index-only.
        Index("ix_campaign_leads_lead", "lead_id",
              postgresql_include=["tenant_id", "campaign_id", "created_at"]),
        # Covers the funnel and unit-cost aggregates per campaign and variant (index-only scans
        # on PostgreSQL; SQLite has no INCLUDE and uses the key columns).
        Index("ix_campaign_leads_tenant_campaign_variant", "tenant_id", "campaign_id", "variant",
              postgresql_include=["id", "lead_id", "replied_at", "cost_microusd", "created_at"]),
        # The claim: the due leads of one campaign, oldest due first.
        Index("ix_campaign_leads_campaign_due", "campaign_id", "status", "next_action_at"),
        # Throughput: the leads of one campaign that changed in the last minutes.
        Index("ix_campaign_leads_campaign_updated", "campaign_id", "updated_at"),
        # The review queue: drafts awaiting approval, oldest first, paged and counted index-only.
        Index("ix_campaign_leads_tenant_status_updated", "tenant_id", "status", "updated_at", "id"),
        # The Overview's reply rate: the distinct leads that replied, counted index-only.
        Index("ix_campaign_leads_tenant_replied", "tenant_id", "lead_id",
              postgresql_where=text("replied_at IS NOT NULL"),
              sqlite_where=text("replied_at IS NOT NULL")),
    )


class Message(TenantOwned, Base):
    """The send ledger: one row per (enrolment, step), written before the provider is called."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # Both None once the lead is erased (core.leads.erasure): the anonymised row stays in the ledger.
    campaign_lead_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("campaign_leads.id", ondelete="SET NULL")
    )
    lead_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("leads.id", ondelete="SET NULL"))
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.sending.value)
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("campaign_lead_id", "step"),
        Index("ix_messages_tenant_created", "tenant_id", "created_at"),
        # The contact caps: one lead's recent messages, across campaigns.
        Index("ix_messages_lead_created", "lead_id", "created_at"),
        Index("ix_messages_campaign_status", "campaign_id", "status"),
        Index("ix_messages_status", "status"),
        # Replies and bounces quote the Message-ID they answer (core.inbound.mailbox).
        Index("ix_messages_provider_message_id", "provider_message_id"),
        # Covers the first-touch counts per campaign and the join from enrolments to them.
        Index("ix_messages_tenant_campaign_step_status", "tenant_id", "campaign_id", "step", "status",
              postgresql_include=["campaign_lead_id", "sent_at"]),
        # The Overview's leads contacted: distinct leads whose first touch went out, index-only.
        Index("ix_messages_tenant_first_touch_sent", "tenant_id", "lead_id",
              postgresql_where=text(FIRST_TOUCH_SENT), sqlite_where=text(FIRST_TOUCH_SENT)),
        # Reports' leads first contacted per day: the day's first touches, index-only.
        Index("ix_messages_tenant_first_touch_day", "tenant_id", "sent_at", "lead_id",
              postgresql_where=text(FIRST_TOUCH_SENT), sqlite_where=text(FIRST_TOUCH_SENT)),
    )


class OutboxMessage(TenantOwned, Base):
    """A message "sent" by the outbox provider: nothing leaves the machine.

    Keyed by the ledger's idempotency key and committed by the send itself, so a ledger row
    left `sending` by a dead worker can be reconciled exactly: here means sent.
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_outbox_messages_tenant_created", "tenant_id", "created_at"),)


class LLMCall(TenantOwned, Base):
    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    # None once the lead is erased: the call's cost still counts.
    campaign_lead_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("campaign_leads.id", ondelete="SET NULL")
    )
    node: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_microusd: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_llm_calls_campaign", "campaign_id"),
        Index("ix_llm_calls_campaign_lead", "campaign_lead_id"),
        # Covers the Costs page's spend aggregate over a date range.
        Index("ix_llm_calls_tenant_created_spend", "tenant_id", "created_at",
              postgresql_include=["campaign_id", "model", "node", "input_tokens", "output_tokens",
                                  "cost_microusd"]),
    )


class Event(TenantOwned, Base):
    """The per-lead processing log: one row per pipeline node (and runner decision)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    campaign_lead_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("campaign_leads.id", ondelete="CASCADE")
    )
    trace_id: Mapped[str | None] = mapped_column(String(36))
    node: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_events_campaign_lead", "campaign_lead_id", "id"),
        Index("ix_events_campaign_created", "campaign_id", "created_at"),
        Index("ix_events_tenant_created", "tenant_id", "created_at"),
    )


class CampaignOutcome(TenantOwned, Base):
    """A finished campaign's counts, counted once after it finished instead of on every render.

    The Campaigns list shows every campaign's enrolments by status and, once finished, its
    messages sent; a finished campaign's enrolments no longer change, so they are counted once
    and kept here. Keyed by the campaign's `completed_at`: a campaign reopened (a retry of its
    failed leads) and finished again is counted afresh.
    """

    __tablename__ = "campaign_outcomes"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    completed_at: Mapped[datetime]
    leads_by_status: Mapped[dict[str, int]] = mapped_column(JSON)
    messages_sent: Mapped[int] = mapped_column(Integer)
    counted_at: Mapped[datetime] = mapped_column(default=utcnow)
