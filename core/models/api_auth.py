"""The API's credentials and conventions: refresh tokens, API keys, rate counters, idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, TenantOwned, utcnow


class ApiRefreshToken(TenantOwned, Base):
    """One refresh token of an API sign-in (only its SHA-256 is stored).

    A sign-in is a family: each refresh uses up its token (`used_at`) and adds the next one to
    the family. Presenting a used token again means it was copied: the whole family is revoked,
    and with it every access token of the sign-in (they name their family, checked per request).
    """

    __tablename__ = "api_refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_api_refresh_tokens_family", "family", "revoked_at"),
        Index("ix_api_refresh_tokens_user", "user_id", "revoked_at"),
    )


class ApiKey(TenantOwned, Base):
    """A machine's credential for the API: `lf_<prefix>_<secret>`; only the secret's SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_keys_tenant_created", "tenant_id", "created_at"),)


class ApiRateCounter(Base):
    """Requests of one credential in one minute (a fixed window), shared by every API replica.

    Not tenant-owned: the credential ("user:12", "key:3") is the key, and the row holds no data.
    """

    __tablename__ = "api_rate_counters"

    credential: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)  # Unix minute
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_api_rate_counters_window", "window_start"),)


class ApiIdempotencyKey(TenantOwned, Base):
    """The first answer to a POST sent with an Idempotency-Key, replayed to its retries.

    `key_hash` is the SHA-256 of the credential and the key; the answer is encrypted with a key
    derived from the client's Idempotency-Key, which is not stored: a copy of the table reads no
    answer (one that created an API key holds its secret). `status` is None while in flight.
    """

    __tablename__ = "api_idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_api_idempotency_keys_created", "created_at"),)
