"""Declarative base, column types and the status enums every model shares."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# A big integer primary key that is still SQLite's auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same behaviour on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class TenantOwned:
    """Mixin for every table whose rows belong to one tenant; `core.db` scopes queries on it."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


class Role(enum.StrEnum):
    owner = "owner"
    admin = "admin"
    manager = "manager"
    analyst = "analyst"


class Channel(enum.StrEnum):
    sms = "sms"
    email = "email"


class SuppressionReason(enum.StrEnum):
    stop = "stop"
    unsubscribe = "unsubscribe"
    bounce = "bounce"
    manual = "manual"
    # The lead was erased on request (GDPR art. 17): its addresses are never messaged again.
    erasure = "erasure"


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"


LIVE_CAMPAIGN_STATUSES = (CampaignStatus.scheduled, CampaignStatus.running, CampaignStatus.paused)


# A campaign in one of these will send nothing more: it may be archived.
FINISHED_CAMPAIGN_STATUSES = (CampaignStatus.completed, CampaignStatus.cancelled, CampaignStatus.failed)


class EnrolmentStatus(enum.StrEnum):
    """The life cycle of one enrolment (`campaign_leads.status`)."""

    pending = "pending"
    in_progress = "in_progress"
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    sent = "sent"
    skipped = "skipped"
    deferred = "deferred"
    failed = "failed"
    unknown = "unknown"
    cancelled = "cancelled"


FINAL_ENROLMENT_STATUSES = (
    EnrolmentStatus.sent,
    EnrolmentStatus.skipped,
    EnrolmentStatus.failed,
    EnrolmentStatus.unknown,
    EnrolmentStatus.cancelled,
)


# The messages the Overview's reply rate counts as contacts (a partial index holds just these).
FIRST_TOUCH_SENT = "step = 0 AND status IN ('sent', 'delivered')"


class MessageStatus(enum.StrEnum):
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    # The carrier could not hand it over (Twilio's `undelivered` delivery receipt).
    undelivered = "undelivered"
    failed = "failed"
    unknown = "unknown"


# The reply classes (core.inbound.classify) that end a campaign's sequence for the lead who sent
# one, unless the campaign chooses others: every human answer but an absence. An opt-out always does.
DEFAULT_REPLY_STOP_CLASSES = ("interested", "question", "not_now", "not_interested", "referral",
                              "wrong_person", "unclassified")
