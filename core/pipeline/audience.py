"""A campaign's audience: its filter (`Campaign.audience`) over the tenant's leads, as one query.

Keys, all optional and combined with AND (values within a key with OR): `tags`, `import_ids`,
`industries` (case-insensitive), `countries` (ISO codes). An empty filter is every lead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.models import Campaign, Channel, Lead, LeadTag, Suppression

AUDIENCE_KEYS = ("tags", "import_ids", "industries", "countries")


def _values(audience: dict[str, Any], key: str) -> list[Any]:
    value = audience.get(key) or []
    if not isinstance(value, list):
        raise ValidationError(f"the audience filter '{key}' must be a list, not {value!r}")
    return value


def audience_filter(audience: dict[str, Any] | None, *, exclude_opted_out: bool = True) -> list[Any]:
    """The WHERE clauses of the filter, for use in any select over Lead."""
    audience = audience or {}
    unknown = set(audience) - set(AUDIENCE_KEYS)
    if unknown:
        raise ValidationError(
            f"unknown audience filter keys: {', '.join(sorted(unknown))}; use {', '.join(AUDIENCE_KEYS)}"
        )
    clauses: list[Any] = []
    if tags := _values(audience, "tags"):
        clauses.append(Lead.id.in_(select(LeadTag.lead_id).where(LeadTag.tag.in_([str(t) for t in tags]))))
    if import_ids := _values(audience, "import_ids"):
        clauses.append(Lead.import_id.in_([int(i) for i in import_ids]))
    if industries := _values(audience, "industries"):
        clauses.append(func.lower(Lead.industry).in_([str(i).lower() for i in industries]))
    if countries := _values(audience, "countries"):
        clauses.append(Lead.country.in_([str(c).upper() for c in countries]))
    if exclude_opted_out:
        clauses.append(Lead.opted_out_at.is_(None))
    return clauses


def _filter_of(audience: Campaign | dict[str, Any] | None) -> dict[str, Any] | None:
    return audience.audience if isinstance(audience, Campaign) else audience


def audience_query(
    audience: Campaign | dict[str, Any] | None, *, exclude_opted_out: bool = True
) -> Select[Lead]:
    """select(Lead) narrowed to a campaign's audience (or a filter); run it in a tenant session."""
    return select(Lead).where(*audience_filter(_filter_of(audience), exclude_opted_out=exclude_opted_out))


def audience_count(
    session: Session, audience: Campaign | dict[str, Any] | None, *, exclude_opted_out: bool = True
) -> int:
    clauses = audience_filter(_filter_of(audience), exclude_opted_out=exclude_opted_out)
    return session.scalar(select(func.count(Lead.id)).where(*clauses)) or 0


def audience_conditions(tenant_id: int, channel: str, audience: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The WHERE clause on `Lead` of the leads a campaign may message: the pipeline's audience
    filter (which leaves out opted-out leads), an address for the channel, not suppressed on it."""
    address = Lead.phone if channel == Channel.sms.value else Lead.email
    return [
        # Explicit: an INSERT ... SELECT gets no automatic tenant scope on its SELECT.
        Lead.tenant_id == tenant_id,
        *audience_filter(audience, exclude_opted_out=True),
        address.is_not(None),
        ~exists().where(
            Suppression.tenant_id == tenant_id,
            Suppression.channel == channel,
            Suppression.address == address,
        ),
    ]
