"""Tenants, their sender identities, users, sign-in sessions and the audit log."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, TenantOwned, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    default_country: Mapped[str] = mapped_column(String(2), default="US")
    # Send window in the recipient's local time, "HH:MM".
    send_window_start: Mapped[str] = mapped_column(String(5), default="08:00")
    send_window_end: Mapped[str] = mapped_column(String(5), default="21:00")
    weekdays_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # The tenant's own clock (IANA name) for schedules and times shown; None: its country's main zone.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Contact caps per lead across every campaign and channel, over a rolling day and week; None: no cap.
    contact_cap_per_day: Mapped[int | None] = mapped_column(Integer)
    contact_cap_per_week: Mapped[int | None] = mapped_column(Integer)
    # Defer sends on public holidays, in `holiday_country`'s calendar (None: the recipient's country).
    skip_public_holidays: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    holiday_country: Mapped[str | None] = mapped_column(String(2))
    sms_sender_id: Mapped[str | None] = mapped_column(String(32))
    # The sender id as compared across tenants (core.tenants.sms_sender_key): E.164 for a number,
    # folded for an alphanumeric id. Unique: one tenant cannot send as another.
    sms_sender_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    email_sender: Mapped[str | None] = mapped_column(String(254))
    postal_address: Mapped[str | None] = mapped_column(Text)
    link_allow_list: Mapped[list[Any]] = mapped_column(default=list)
    # Value propositions and proof points, optionally per industry: {"default": {...}, "<industry>": {...}}.
    playbook: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # model -> {"input": USD per 1M tokens, "output": USD per 1M tokens}
    price_overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    monthly_budget_microusd: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SenderVerificationKind(enum.StrEnum):
    domain = "domain"  # a DNS TXT record: every address at the domain
    address = "address"  # a code sent to the address: that address only


VERIFIED_SENDER = "verified_at IS NOT NULL"


class SenderVerification(TenantOwned, Base):
    """A tenant's claim to send email as a domain or an address, and whether it is proven.

    A domain is proven by a TXT record `leadflow-verification=<token>`; an address by the code
    sent to it (only its hash is kept). A verified domain or address belongs to one tenant.
    """

    __tablename__ = "sender_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(254))  # the IDNA domain or the normalised address
    # The DNS token to publish (domain), or the sha256 of the code sent (address).
    token: Mapped[str] = mapped_column(String(64))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    via: Mapped[str | None] = mapped_column(String(16))  # the provider that carried the code
    expires_at: Mapped[datetime | None]  # when the code stops working (address)
    last_checked_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "value"),
        Index("uq_sender_verifications_verified", "kind", "value", unique=True,
              postgresql_where=text(VERIFIED_SENDER), sqlite_where=text(VERIFIED_SENDER)),
    )


class User(TenantOwned, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique per tenant (username first, so the sign-in finds a username before it knows the
    # tenant); the login form asks for the organisation when a username is in several.
    username: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by an invitation, an admin's reset or a sign-in whose password no longer meets the
    # policy: the next sign-in leads to the password form before any page.
    password_change_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index("ix_users_tenant_role", "tenant_id", "role"),
        UniqueConstraint("username", "tenant_id"),
    )


class SessionRevocation(enum.StrEnum):
    """Why a sign-in session ended before it expired."""

    sign_out = "sign_out"
    password_changed = "password_changed"
    password_reset = "password_reset"
    deactivated = "deactivated"
    locked = "locked"


class UserSession(TenantOwned, Base):
    """One sign-in: the cookie carries its random id (only its SHA-256 is stored here).

    Revoking the rows of a user ends every browser's sign-in at once, checked on each page load.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_user_sessions_user", "user_id", "revoked_at"),)


class AuditLog(TenantOwned, Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_audit_log_tenant_created", "tenant_id", "created_at"),)
