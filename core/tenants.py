"""Tenants: creating them, listing them, finding one by name, and their unique SMS sender ids."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.models import Tenant, User

# Alphanumeric SMS sender ids: at most 11 letters, digits or spaces, at least one letter.
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
# Characters that read alike on a handset, folded before sender ids are compared: AMAZ0N is
# Amazon, PayPa1 is PayPal, rn is m.
_LOOK_ALIKES = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("i", "l"), ("5", "s"))
SENDER_ID_TAKEN = (
    "SMS sender id '{sender}' is already used by another tenant; sender ids are unique so that "
    "recipients can tell senders apart. Choose another id or number"
)


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


def tenant_named(name: str) -> ColumnElement[bool]:
    """A WHERE clause on Tenant: the tenant of this name, in any case and spacing."""
    return func.lower(Tenant.name) == " ".join(name.split()).lower()


def create_tenant_in(session: Session, name: str, default_country: str) -> Tenant:
    """Create a tenant inside the caller's (system) transaction."""
    tenant_name = _check_tenant_name(name)
    country = check_country(default_country)
    if session.scalar(select(Tenant.id).where(tenant_named(tenant_name))):
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
        return [TenantView(t.id, t.name, t.default_country, n, t.created_at) for t, n in rows]


def installation_tenant_id(db: Database) -> int | None:
    """The organisation that runs the installation: the first one created (by `setup` or
    `tenants create`). Its owners create and list the others; no other tenant sees them."""
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(func.min(Tenant.id)))


def tenant_id_by_name(db: Database, name: str) -> int:
    with db.session(system=True, read_only=True) as session:
        tenant_id = session.scalar(select(Tenant.id).where(tenant_named(name)))
    if tenant_id is None:
        raise NotFound(f"no tenant named '{name}'; list them with: python -m core.cli tenants list")
    return tenant_id


def normalise_sms_sender(value: str | None, country: str) -> str | None:
    """A sender id as it is stored: +E.164 for a number, the typed id for an alphanumeric one.

    A number without + is read in the tenant's default country; fullwidth characters count as
    their ASCII forms. None for a blank value; ValidationError for anything else.
    """
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not text:
        return None
    if not re.search(r"[A-Za-z]", text):
        try:
            number = phonenumbers.parse(text, None if text.startswith("+") else country)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if text.startswith("+"):
            raise ValidationError(f"SMS sender id '{text}' is not a valid phone number in +E.164 form")
    text = " ".join(text.split())
    if not ALPHANUMERIC_SENDER.match(text):
        raise ValidationError(
            f"SMS sender id '{text}' must be a phone number (+14155550100) or up to 11 letters, "
            "digits and spaces with at least one letter"
        )
    return text


def sms_sender_key(sender_id: str) -> str:
    """The sender id as compared across tenants (of a sender id as normalise_sms_sender stores it).

    A number is its E.164 form (the digits after the +); an alphanumeric id is case-folded,
    without spaces, with look-alike characters folded: "ACME CORP", "Acme Corp" and "AcmeC0rp"
    are one id.
    """
    text = unicodedata.normalize("NFKC", sender_id).strip()
    if text.startswith("+"):
        return "+" + re.sub(r"\D", "", text)
    key = "".join(text.casefold().split())
    for look_alike, letter in _LOOK_ALIKES:
        key = key.replace(look_alike, letter)
    return key


def sms_sender_in_use(session: Session, key: str, *, tenant_id: int) -> bool:
    """Whether another tenant holds this sender key (the caller's session must see every tenant)."""
    return (
        session.scalar(select(Tenant.id).where(Tenant.sms_sender_key == key, Tenant.id != tenant_id))
        is not None
    )
