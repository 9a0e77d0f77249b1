"""Tenants: creating them, listing them and finding one by name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.models import Tenant, User


@dataclass(frozen=True)
class TenantView:
    id: int
    name: str
    default_country: str
    users: int
    created_at: datetime


def check_country(country: str) -> str:
    code = country.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"country '{country}' is not a two-letter ISO code such as US, GB or DE")
    return code


def _check_tenant_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError("a tenant name is required")
    if len(cleaned) > 120:
        raise ValidationError("the tenant name may have at most 120 characters")
    return cleaned


def create_tenant_in(session: Session, name: str, default_country: str) -> Tenant:
    """Create a tenant inside the caller's (system) transaction."""
    tenant_name = _check_tenant_name(name)
    country = check_country(default_country)
    if session.scalar(select(Tenant.id).where(func.lower(Tenant.name) == tenant_name.lower())):
        raise Conflict(f"a tenant named '{tenant_name}' already exists")
    tenant = Tenant(name=tenant_name, default_country=country)
    session.add(tenant)
    session.flush()
    return tenant


def create_tenant(db: Database, name: str, default_country: str = "US") -> TenantView:
    with db.session(system=True) as session, session.begin():
        tenant = create_tenant_in(session, name, default_country)
        return TenantView(tenant.id, tenant.name, tenant.default_country, 0, tenant.created_at)


def list_tenants(db: Database) -> list[TenantView]:
    with db.session(system=True, read_only=True) as session:
        rows = session.execute(
            select(Tenant, func.count(User.id))
            .outerjoin(User, User.tenant_id == Tenant.id)
            .group_by(Tenant.id)
            .order_by(Tenant.name)
        ).all()
        return [
            TenantView(t.id, t.name, t.default_country, n, t.created_at) for t, n in rows
        ]


def tenant_id_by_name(db: Database, name: str) -> int:
    with db.session(system=True, read_only=True) as session:
        tenant_id = session.scalar(
            select(Tenant.id).where(func.lower(Tenant.name) == " ".join(name.split()).lower())
        )
    if tenant_id is None:
        raise NotFound(f"no tenant named '{name}'; list them with: python -m core.cli tenants list")
    return tenant_id
