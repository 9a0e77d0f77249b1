"""Leads, their tags, imports and column mappings, and suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.leads.search import SEARCHED_FIELDS, lead_search_text
from core.models.base import Base, BigId, TenantOwned, utcnow


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
