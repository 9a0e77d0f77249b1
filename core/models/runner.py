"""The job runner's tables: worker heartbeats, rate limits, budget reservations, spend."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, utcnow


class WorkerHeartbeat(Base):
    """A job-runner process and when it was last seen alive (not tenant-owned)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # embedded | standalone
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_worker_heartbeats_last_seen", "last_seen_at"),)


class RateLimit(Base):
    """One shared rate limit (a model's requests or tokens, a channel's or campaign's sends).

    `next_free_at` is the theoretical arrival time of GCRA, in Unix seconds: a caller takes the
    later of it and now, and pushes it on by cost / rate, in one atomic UPDATE shared by every
    worker of the database (not tenant-owned: provider limits belong to the account).
    """

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    next_free_at: Mapped[float] = mapped_column(Float, default=0.0)
    # The share of the configured rate in use (AIMD, core.gate): cut when the provider answers
    # 429, won back request by request; and the Unix time before which it is not cut again.
    rate_factor: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    cuts_held_until: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class BudgetReservation(Base):
    """A model call in flight, holding its estimated cost against the campaign's budget cap.

    Deleted when the call settles. The worker that holds it renews `expires_at` with its leases,
    so a slow call keeps counting; one left by a dead worker stops counting when it expires.
    """

    __tablename__ = "budget_reservations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Counted against the tenant's monthly budget too (core.gate; not TenantOwned: only the
    # gate's system sessions touch it, like rate_limits).
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # None for a call outside any campaign: it counts against the tenant's month only.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    amount_microusd: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(100))  # the worker id, when a worker holds it
    expires_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_budget_reservations_campaign", "campaign_id", "expires_at"),
        Index("ix_budget_reservations_tenant", "tenant_id", "expires_at"),
    )


class TenantSpend(Base):
    """A tenant's settled model spend in one calendar month (UTC), kept by the call gate.

    The monthly budget is checked against it (plus the reservations in flight) without summing
    llm_calls; it is written when a call settles, before the call's llm_calls row exists.
    """

    __tablename__ = "tenant_spend"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "YYYY-MM"
    spent_microusd: Mapped[int] = mapped_column(BigInteger, default=0)
