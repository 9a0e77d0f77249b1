"""SQLAlchemy 2 typed models: one place for every table of Leadflow.

Money is stored as integer micro-dollars (`*_microusd`, 1 USD = 1,000,000): exact on SQLite and
PostgreSQL alike and summed in SQL without rounding. Times are stored as UTC and always come back
timezone-aware (`UTCDateTime`).
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

from core.leads.search import SEARCHED_FIELDS, lead_search_text

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


class LeadStatus(enum.StrEnum):
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


FINAL_LEAD_STATUSES = (
    LeadStatus.sent,
    LeadStatus.skipped,
    LeadStatus.failed,
    LeadStatus.unknown,
    LeadStatus.cancelled,
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


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    default_country: Mapped[str] = mapped_column(String(2), default="US")
    # Send window in the recipient's local time, "HH:MM".
    quiet_hours_start: Mapped[str] = mapped_column(String(5), default="08:00")
    quiet_hours_end: Mapped[str] = mapped_column(String(5), default="21:00")
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


class LeadImport(TenantOwned, Base):
    __tablename__ = "lead_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    sheet: Mapped[str | None] = mapped_column(String(120))
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    on_duplicate: Mapped[str] = mapped_column(String(16), default="skip")
    status: Mapped[str] = mapped_column(String(16), default="completed")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 17, "reason": "phone '12345' is not a valid number for US"}, ...]
    rejects: Mapped[list[Any]] = mapped_column(default=list)
    # [{"row": 4, "warning": "phone '12345' is not a valid number for US; left out"}, ...]: rows kept
    warnings: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_lead_imports_tenant_created", "tenant_id", "created_at"),)


class ColumnMapping(TenantOwned, Base):
    """A saved header -> lead field mapping, offered again for the next file with the same headers."""

    __tablename__ = "column_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    header_signature: Mapped[str] = mapped_column(String(64))
    headers: Mapped[list[Any]] = mapped_column(default=list)
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("tenant_id", "header_signature"),)


def _search_text_default(context: Any) -> str:
    """The search text of a row being inserted, from the values the insert carries."""
    return lead_search_text(context.get_current_parameters())


class Lead(TenantOwned, Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))  # normalised
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(253))  # a bare domain
    industry: Mapped[str | None] = mapped_column(String(120))
    city: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str | None] = mapped_column(String(2))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The lead's other phones and emails, best first, beside the one in `phone`/`email`:
    # [{"channel": "sms" | "email", "value": E.164 or normalised email, "label": the source column}].
    alternates: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("lead_imports.id", ondelete="SET NULL")
    )
    opted_out_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Name, email, company and phone digits folded for search (core.leads.search). Every insert,
    # ORM or Core, single or bulk, gets it from the column default; the ORM keeps it current on
    # update through the mapper events below; a bulk UPDATE sets it with lead_search_text().
    search_text: Mapped[str] = mapped_column(Text, default=_search_text_default, server_default="")

    tags: Mapped[list[LeadTag]] = relationship(
        back_populates="lead", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        UniqueConstraint("tenant_id", "phone"),
        UniqueConstraint("tenant_id", "email"),
        Index("ix_leads_tenant_created", "tenant_id", "created_at"),
        Index("ix_leads_tenant_import", "tenant_id", "import_id"),
        Index("ix_leads_tenant_opted_out", "tenant_id", "opted_out_at"),
        Index("ix_leads_tenant_industry", "tenant_id", "industry"),
        Index("ix_leads_tenant_country", "tenant_id", "country"),
        # The few opted-out leads, small enough for the Reports funnel to hash-join in full.
        Index("ix_leads_tenant_opted_out_ids", "tenant_id", "id",
              postgresql_include=["opted_out_at"], postgresql_where=text("opted_out_at IS NOT NULL"),
              sqlite_where=text("opted_out_at IS NOT NULL")),
        # A trigram index answers "contains" searches on PostgreSQL (migration 0012 falls back to a
        # prefix index where pg_trgm cannot be installed); SQLite scans this narrow index instead
        # of the wide rows.
        Index("ix_leads_search_text", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}),
    )


@event.listens_for(Lead, "before_insert")
@event.listens_for(Lead, "before_update")
def _fold_lead_for_search(_mapper: Any, _connection: Any, lead: Lead) -> None:
    lead.search_text = lead_search_text({name: getattr(lead, name) for name in SEARCHED_FIELDS})


class LeadTag(TenantOwned, Base):
    """One tag on one lead: a table, not a JSON list, so filtering by tag uses an index."""

    __tablename__ = "lead_tags"

    lead_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    lead: Mapped[Lead] = relationship(back_populates="tags")

    __table_args__ = (Index("ix_lead_tags_tenant_tag", "tenant_id", "tag"),)


class Suppression(TenantOwned, Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(254))  # E.164 phone or normalised email
    reason: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("tenant_id", "channel", "address"),)


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
    # A/B variants: [{"name": "A", "prompt": "..."}, ...]; empty means one variant "A".
    variants: Mapped[list[Any]] = mapped_column(default=list)
    model: Mapped[str] = mapped_column(String(64))
    temperature: Mapped[float] = mapped_column(Float, default=0.7)
    # {"tags": [...], "import_ids": [...], "industries": [...], "countries": [...]}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [{"delay_hours": 0, "prompt": "..."}, {"delay_hours": 72, "prompt": "follow-up ..."}]
    steps: Mapped[list[Any]] = mapped_column(default=list)
    research_web: Mapped[bool] = mapped_column(Boolean, default=False)
    max_sms_segments: Mapped[int] = mapped_column(Integer, default=2)
    scheduled_at: Mapped[datetime | None]
    # Overrides of the tenant's send window: {"start": "09:00", "end": "17:00", "weekdays_only": true}
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.pending.value)
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
        # Covers the first-touch counts per campaign and the join from enrolments to them.
        Index("ix_messages_tenant_campaign_step_status", "tenant_id", "campaign_id", "step", "status",
              postgresql_include=["campaign_lead_id", "sent_at"]),
        # The Overview's leads contacted: distinct leads whose first touch went out, index-only.
        Index("ix_messages_tenant_first_touch_sent", "tenant_id", "lead_id",
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


TENANT_TABLE_NAMES: frozenset[str] = frozenset(
    mapper.local_table.description
    for mapper in Base.registry.mappers
    if issubclass(mapper.class_, TenantOwned)
)
