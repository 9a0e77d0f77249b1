"""Tenants: creating them, listing them, finding one by name, their unique SMS sender ids and their clock."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.models import Tenant, User
from core.permissions import Actor

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


# -- the tenant's clock -----------------------------------------------------------------------

# Where tzdata's first zone of a country is not where most of its people live.
_MAIN_ZONES = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
}


@lru_cache(maxsize=1)
def _zones_by_country() -> dict[str, tuple[str, ...]]:
    """Country code -> its zones, as tzdata's zone.tab lists them (the main one first)."""
    zones: dict[str, list[str]] = {}
    for line in files("tzdata.zoneinfo").joinpath("zone.tab").read_text().splitlines():
        if line and not line.startswith("#"):
            country, _, zone = line.split("\t")[:3]
            zones.setdefault(country, []).append(zone)
    return {country: tuple(names) for country, names in zones.items()}


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    """Country code -> its English name, as tzdata's iso3166.tab has them."""
    names = {}
    for line in files("tzdata.zoneinfo").joinpath("iso3166.tab").read_text().splitlines():
        if line and not line.startswith("#"):
            code, name = line.split("\t")[:2]
            names[code] = name
    return names


def default_time_zone(country: str) -> str:
    """The zone a tenant in `country` most likely keeps its clock in (US -> America/New_York)."""
    code = country.strip().upper()
    return _MAIN_ZONES.get(code) or next(iter(_zones_by_country().get(code, ())), "UTC")


@lru_cache(maxsize=1)
def time_zone_choices() -> tuple[str, ...]:
    """Every IANA zone a tenant may choose: the countries' zones and UTC, sorted."""
    named = {zone for zones in _zones_by_country().values() for zone in zones}
    return tuple(sorted(named & available_timezones())) + ("UTC",)


def check_time_zone(value: str | None) -> str | None:
    """An IANA zone name as stored; None (blank) means the default of the tenant's country."""
    name = (value or "").strip()
    if not name:
        return None
    if name not in available_timezones():
        raise ValidationError(f"time zone '{name}' is not an IANA zone name such as Europe/Berlin")
    return name


def tenant_time_zone(time_zone: str | None, country: str) -> str:
    """The zone the tenant's times are entered and shown in: its own, else its country's."""
    return time_zone or default_time_zone(country)


def local_time_in(instant: datetime, zone: str) -> datetime:
    """An instant on the tenant's wall clock (for a date and time picker)."""
    return instant.astimezone(ZoneInfo(zone))


def from_local_time(day: date, clock: time, zone: str) -> datetime:
    """A date and time on the tenant's wall clock as an instant (UTC)."""
    return datetime.combine(day, clock, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def in_zone(instant: datetime, zone: str) -> str:
    """An instant as the tenant reads it: "2026-12-24 09:00 Europe/Berlin"."""
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def tenant_clock(db: Database, actor: Actor) -> str:
    """The zone name the actor's tenant enters and reads times in (any role may read it)."""
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        row = session.execute(
            select(Tenant.time_zone, Tenant.default_country).where(Tenant.id == actor.tenant_id)
        ).one_or_none()
    if row is None:
        raise NotFound(f"tenant {actor.tenant_id} does not exist")
    return tenant_time_zone(row.time_zone, row.default_country)
