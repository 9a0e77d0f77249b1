"""Administration: users and roles, tenant settings, provider status and the audit log.

Every change is checked against the actor's permissions here (not only in the page) and writes
the audit log in the same transaction. Listing users and unlocking reuse `core.auth`.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from decimal import Decimal
from email.utils import formataddr, parseaddr
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import audit_conditions, record_audit
from core.auth import (
    PasswordReset,
    UserView,
    add_user_in,
    create_user,
    hash_password,
    list_users,
    parse_role,
    reset_password,
    unlock_user,
)
from core.compliance.frequency import check_cap
from core.compliance.public_holidays import check_holiday_country
from core.config import Settings
from core.db import Database
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.models import AuditLog, Role, SessionRevocation, Tenant, User
from core.money import MICROUSD_PER_USD
from core.permissions import Actor, Permission
from core.sender_verification import claimed_by_another_tenant
from core.sign_in import revoke_user_sessions
from core.tenants import (
    SENDER_ID_TAKEN,
    TenantView,
    check_country,
    check_time_zone,
    create_tenant_in,
    installation_tenant_id,
    list_tenants,
    normalise_sms_sender,
    sms_sender_in_use,
    sms_sender_key,
)
from core.text import plural_noun

# list_users, unlock_user and reset_password live in core.auth; they are re-exported so the Admin
# page has one module.
__all__ = [
    "AuditFilterOptions",
    "AuditPage",
    "Invitation",
    "NewOrganisation",
    "PasswordReset",
    "ProviderStatus",
    "TenantSettings",
    "audit_filter_options",
    "change_role",
    "create_organisation",
    "get_tenant_settings",
    "invite_user",
    "list_organisations",
    "list_users",
    "microusd_as_dollars_text",
    "price_override_rows",
    "price_overrides_from_rows",
    "provider_status",
    "provider_status_table",
    "query_audit_log",
    "reset_password",
    "set_user_active",
    "unlock_user",
    "update_tenant_settings",
    "user_state",
    "users_table",
]

INITIAL_PASSWORD_BYTES = 12  # token_urlsafe(12): 16 characters, above the password policy
MAX_MONTHLY_BUDGET_USD = 10_000_000
MAX_PRICE_PER_MILLION_USD = 10_000
MAX_POSTAL_ADDRESS_LENGTH = 500
MAX_ALLOW_LIST_ENTRIES = 200
MAX_PLAYBOOK_SECTIONS = 200
MAX_PLAYBOOK_ITEMS = 50
MAX_PLAYBOOK_ITEM_LENGTH = 500
PLAYBOOK_KEYS = ("value_propositions", "proof_points")
EMPTY_PLAYBOOK: dict[str, dict[str, list[str]]] = {"default": {key: [] for key in PLAYBOOK_KEYS}}
AUDIT_PAGE_SIZES = (25, 50, 100, 200)
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
HOSTNAME_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# --- users -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """A new user and the initial password, which is shown once and stored only as a hash."""

    user: UserView
    initial_password: str


def invite_user(
    db: Database, actor: Actor, *, username: str, name: str, email: str | None, role: str | Role
) -> Invitation:
    """Create a user with a random one-time initial password (only owners may invite owners).

    The user replaces it with their own at the first sign-in.
    """
    password = secrets.token_urlsafe(INITIAL_PASSWORD_BYTES)
    user = create_user(db, actor, username=username, name=name or username, email=email,
                       role=role, password=password, password_change_required=True)
    return Invitation(user=user, initial_password=password)


@dataclass(frozen=True)
class NewOrganisation:
    """An organisation created from the dashboard, and its first user's one-time password."""

    tenant: TenantView
    invitation: Invitation


# The first user of a new organisation runs it: its admin, or its owner (who may also make owners).
FIRST_USER_ROLES = (Role.admin, Role.owner)


def create_organisation(
    db: Database,
    actor: Actor,
    *,
    name: str,
    default_country: str,
    username: str,
    user_name: str,
    email: str | None,
    role: str | Role = Role.admin,
) -> NewOrganisation:
    """An owner of the installation creates another organisation (tenant) with its first user,
    who gets a one-time password, as an invited user does. All or nothing; audited in the
    owner's organisation and in the new one."""
    _require_installation_owner(db, actor)
    first_role = parse_role(role)
    if first_role not in FIRST_USER_ROLES:
        raise ValidationError(
            "the first user of an organisation is its admin or its owner: they invite the rest"
        )
    password = secrets.token_urlsafe(INITIAL_PASSWORD_BYTES)
    password_hash = hash_password(password)
    # A system session: the new tenant is not the actor's, and its name is unique across all.
    with db.session(system=True) as session, session.begin():
        tenant = create_tenant_in(session, name, default_country)
        user = add_user_in(session, tenant.id, username=username, name=user_name or username, email=email,
                           role=first_role, password_hash=password_hash, password_change_required=True)
        first = {"first_user": user.username, "role": first_role.value}
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="tenants.create",
                     entity="tenant", entity_id=tenant.id,
                     details={"name": tenant.name, "default_country": tenant.default_country, **first})
        # The creator belongs to another organisation: named, not linked, in the new one's log.
        record_audit(session, tenant_id=tenant.id, user_id=None, action="setup", entity="tenant",
                     entity_id=tenant.id, details={"created_by": actor.username, **first})
        view = TenantView(tenant.id, tenant.name, tenant.default_country, 1, tenant.created_at)
        return NewOrganisation(tenant=view, invitation=Invitation(UserView.of(user), password))


def list_organisations(db: Database, actor: Actor) -> list[TenantView]:
    """Every organisation of the installation, with its number of users, for its owners."""
    _require_installation_owner(db, actor)
    return list_tenants(db)


def manages_organisations(db: Database, actor: Actor) -> bool:
    """Whether `actor` is an owner of the installation's own organisation (the first one): only
    they see the other organisations; another tenant's owner must not learn their names."""
    return actor.can(Permission.manage_tenants) and actor.tenant_id == installation_tenant_id(db)


def _require_installation_owner(db: Database, actor: Actor) -> None:
    actor.require(Permission.manage_tenants)
    if not manages_organisations(db, actor):
        raise PermissionDenied(
            "only the owners of the installation's own organisation create or list organisations"
        )


def _user_in_tenant(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _lock_active_owner_ids(session: Session) -> list[int]:
    # FOR UPDATE serialises two owners demoting each other at once on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already serialises every writer.
    return list(
        session.scalars(
            select(User.id)
            .where(User.role == Role.owner.value, User.active.is_(True))
            .with_for_update()
        )
    )


def _refuse_losing_last_owner(session: Session, user: User, what: str) -> None:
    if user.role == Role.owner.value and user.active:
        owners = _lock_active_owner_ids(session)
        if owners == [user.id]:
            raise Conflict(
                f"cannot {what} '{user.username}': they are the last active owner; "
                "make another user owner first"
            )


def change_role(
    db: Database, actor: Actor, user_id: int, role: str | Role, *, check_only: bool = False
) -> UserView:
    """Give a user (yourself included) another role; only owners make or unmake owners.

    An owner may step down once another owner is active; the last active owner may not.
    With `check_only`, raise what the change would raise and change nothing (a confirmation
    is asked only for a change that can be made).
    """
    actor.require(Permission.manage_users)
    new_role = parse_role(role)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = _user_in_tenant(session, user_id)
        old_role = Role(user.role)
        if old_role is new_role:
            return UserView.of(user)
        if Role.owner in (old_role, new_role):
            actor.require(Permission.manage_owners)
            _refuse_losing_last_owner(session, user, f"make {new_role.value} of")
        if check_only:
            return UserView.of(user)
        user.role = new_role.value
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="change_role", entity="user", entity_id=user.id,
                     details={"username": user.username, "from": old_role.value,
                              "to": new_role.value})
        return UserView.of(user)


def set_user_active(db: Database, actor: Actor, user_id: int, active: bool) -> UserView:
    """Deactivate (sign-in refused, every session ended, the row and its history kept) or
    reactivate a user."""
    actor.require(Permission.manage_users)
    if user_id == actor.user_id and not active:
        raise PermissionDenied("you cannot deactivate yourself; ask another admin or owner")
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = _user_in_tenant(session, user_id)
        if user.active == active:
            return UserView.of(user)
        if user.role == Role.owner.value:
            actor.require(Permission.manage_owners)
            if not active:
                _refuse_losing_last_owner(session, user, "deactivate")
        user.active = active
        if active:
            user.failed_logins = 0
            user.locked_until = None
        else:
            revoke_user_sessions(session, user.id, SessionRevocation.deactivated)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="reactivate" if active else "deactivate", entity="user",
                     entity_id=user.id, details={"username": user.username})
        return UserView.of(user)


def user_state(user: UserView, now: datetime) -> str:
    """active, inactive, or locked (too many failed logins, until an admin unlocks or it expires)."""
    if not user.active:
        return "inactive"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    return "active"


def users_table(users: Iterable[UserView], *, now: datetime | None = None) -> pd.DataFrame:
    """Users (from list_users) for a table: username, name, email, role, state, last login, and
    whether their password is a one-time one still to be replaced."""
    now = now or datetime.now(UTC)
    return pd.DataFrame(
        [{"username": u.username, "name": u.name, "email": u.email, "role": u.role,
          "state": user_state(u, now), "last login": u.last_login_at,
          "password": "one-time, to be replaced" if u.password_change_required else "their own"}
         for u in users],
        columns=["username", "name", "email", "role", "state", "last login", "password"],
    )


# --- tenant settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantSettings:
    """The settings of one tenant that an admin edits; money in micro-dollars."""

    default_country: str
    send_window_start: str
    send_window_end: str
    weekdays_only: bool
    sms_sender_id: str | None
    email_sender: str | None
    postal_address: str | None
    link_allow_list: list[str]
    playbook: dict[str, dict[str, list[str]]]
    price_overrides: dict[str, dict[str, float]]
    monthly_budget_microusd: int | None
    time_zone: str | None  # None: the country's main zone (core.tenants.tenant_time_zone)
    contact_cap_per_day: int | None
    contact_cap_per_week: int | None
    skip_public_holidays: bool
    holiday_country: str | None  # None: each recipient's own country


SETTING_NAMES = tuple(f.name for f in fields(TenantSettings))


def _settings_of(tenant: Tenant) -> TenantSettings:
    return TenantSettings(**{name: getattr(tenant, name) for name in SETTING_NAMES})


def get_tenant_settings(db: Database, actor: Actor) -> TenantSettings:
    actor.require(Permission.manage_settings)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        tenant = session.get(Tenant, actor.tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {actor.tenant_id} does not exist")
        return _settings_of(tenant)


def _check_time_of_day(value: Any, label: str) -> str:
    text = str(value).strip() if value is not None else ""
    if isinstance(value, time):
        text = value.strftime("%H:%M")
    if not TIME_OF_DAY.match(text):
        raise ValidationError(f"{label} '{text}' is not a time of day as HH:MM (00:00 to 23:59)")
    return text


def _check_email_sender(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    display, address = parseaddr(text)
    try:
        normalized = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(
            f"email sender '{text}' is not valid ({exc}); write it as sales@example.com or "
            "Acme Sales <sales@example.com>"
        ) from exc
    return formataddr((display.strip(), normalized)) if display.strip() else normalized


def _check_postal_address(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if len(text) > MAX_POSTAL_ADDRESS_LENGTH:
        raise ValidationError(f"the postal address may have at most {MAX_POSTAL_ADDRESS_LENGTH} characters")
    return text


def _allowed_host(entry: str) -> str:
    raw = entry.strip().lower()
    parts = urlsplit(raw if "://" in raw else f"//{raw}")
    host = (parts.hostname or "").rstrip(".")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.port:
        raise ValidationError(
            f"link allow-list entry '{entry}' must be a domain such as example.com "
            "(no path, port or credentials)"
        )
    labels = host.split(".")
    if len(labels) < 2 or not all(HOSTNAME_LABEL.match(label) for label in labels):
        raise ValidationError(f"link allow-list entry '{entry}' is not a domain such as example.com")
    return host


def _check_allow_list(value: Any) -> list[str]:
    entries = value.splitlines() if isinstance(value, str) else list(value or [])
    hosts: list[str] = []
    for entry in entries:
        if str(entry).strip():
            host = _allowed_host(str(entry))
            if host not in hosts:
                hosts.append(host)
    if len(hosts) > MAX_ALLOW_LIST_ENTRIES:
        raise ValidationError(f"the link allow-list may have at most {MAX_ALLOW_LIST_ENTRIES} domains")
    return hosts


def _check_playbook(value: Any) -> dict[str, dict[str, list[str]]]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"the playbook is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    if not isinstance(value, dict):
        raise ValidationError(
            'the playbook must be a JSON object such as {"default": {"value_propositions": [...], '
            '"proof_points": [...]}, "retail": {...}}'
        )
    if len(value) > MAX_PLAYBOOK_SECTIONS:
        raise ValidationError(f"the playbook may have at most {MAX_PLAYBOOK_SECTIONS} industries")
    playbook: dict[str, dict[str, list[str]]] = {}
    for industry, section in value.items():
        name = " ".join(str(industry).split())
        if not name:
            raise ValidationError("a playbook industry name is empty; use \"default\" for all industries")
        if not isinstance(section, dict):
            raise ValidationError(f"playbook '{name}' must be an object with {' and '.join(PLAYBOOK_KEYS)}")
        unknown = sorted(set(section) - set(PLAYBOOK_KEYS))
        if unknown:
            raise ValidationError(
                f"playbook '{name}' has unknown {plural_noun(len(unknown), 'key')} {', '.join(unknown)}; "
                f"allowed: {', '.join(PLAYBOOK_KEYS)}"
            )
        playbook[name] = {key: _playbook_items(name, key, section.get(key, [])) for key in PLAYBOOK_KEYS}
    return playbook


def _playbook_items(industry: str, key: str, items: Any) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValidationError(f"playbook '{industry}'.{key} must be a list of texts")
    cleaned = [item.strip() for item in items if item.strip()]
    if len(cleaned) > MAX_PLAYBOOK_ITEMS:
        raise ValidationError(f"playbook '{industry}'.{key} may have at most {MAX_PLAYBOOK_ITEMS} entries")
    for item in cleaned:
        if len(item) > MAX_PLAYBOOK_ITEM_LENGTH:
            raise ValidationError(
                f"playbook '{industry}'.{key} has an entry longer than {MAX_PLAYBOOK_ITEM_LENGTH} "
                f"characters: '{item[:40]}…'"
            )
    return cleaned


def _price(value: Any, label: str) -> float:
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{label} '{value}' is not a number of USD per 1M tokens") from None
    if not math.isfinite(price) or price < 0 or price > MAX_PRICE_PER_MILLION_USD:
        raise ValidationError(
            f"{label} must be between 0 and {MAX_PRICE_PER_MILLION_USD:,} USD per 1M tokens"
        )
    return price


def _check_price_overrides(value: Any) -> dict[str, dict[str, float]]:
    if not isinstance(value, Mapping):
        raise ValidationError("price overrides must map a model to its input and output prices")
    prices: dict[str, dict[str, float]] = {}
    for model, price in value.items():
        name = str(model).strip()
        if not name or len(name) > 64:
            raise ValidationError("a price override needs a model name of 1 to 64 characters")
        if not isinstance(price, Mapping) or set(price) != {"input", "output"}:
            raise ValidationError(f"the price override for '{name}' needs exactly input and output")
        prices[name] = {
            "input": _price(price["input"], f"the input price of '{name}'"),
            "output": _price(price["output"], f"the output price of '{name}'"),
        }
    return prices


def price_overrides_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Rows of {model, input, output} (a table edited on the page) as validated price overrides."""
    prices: dict[str, dict[str, float]] = {}
    for number, row in enumerate(rows, start=1):
        model = str(row.get("model") or "").strip()
        if not model and _blank(row.get("input")) and _blank(row.get("output")):
            continue
        if not model:
            raise ValidationError(f"price row {number}: the model name is missing")
        if model in prices:
            raise ValidationError(f"price row {number}: model '{model}' is listed twice")
        if _blank(row.get("input")) or _blank(row.get("output")):
            raise ValidationError(f"price row {number}: '{model}' needs both an input and an output price")
        prices[model] = {"input": row["input"], "output": row["output"]}
    return _check_price_overrides(prices)


def price_override_rows(prices: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Price overrides as {model, input, output} rows, the shape `price_overrides_from_rows` reads."""
    return [{"model": model, "input": p["input"], "output": p["output"]} for model, p in prices.items()]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def microusd_as_dollars_text(microusd: int | None) -> str:
    """Micro-dollars as the dollars a person edits ("1250.50"); none as blank."""
    if microusd is None:
        return ""
    dollars = Decimal(microusd) / MICROUSD_PER_USD
    # Cents as usual; finer amounts in full, so saving the form unchanged keeps them.
    return f"{dollars:.2f}" if dollars == dollars.quantize(Decimal("0.01")) else f"{dollars.normalize():f}"


def _check_budget(value: Any) -> int | None:
    if value is None:
        return None
    try:
        budget = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"the monthly budget '{value}' is not an amount") from None
    if budget < 0 or budget > MAX_MONTHLY_BUDGET_USD * MICROUSD_PER_USD:
        raise ValidationError(f"the monthly budget must be between $0 and ${MAX_MONTHLY_BUDGET_USD:,}")
    return budget


_SETTING_CHECKS: dict[str, Callable[[Any], Any]] = {
    "default_country": check_country,
    "send_window_start": lambda v: _check_time_of_day(v, "the send window start"),
    "send_window_end": lambda v: _check_time_of_day(v, "the send window end"),
    "weekdays_only": bool,
    "sms_sender_id": lambda v: v,  # needs the tenant's country: checked in update_tenant_settings
    "email_sender": _check_email_sender,
    "postal_address": _check_postal_address,
    "link_allow_list": _check_allow_list,
    "playbook": _check_playbook,
    "price_overrides": _check_price_overrides,
    "monthly_budget_microusd": _check_budget,
    "time_zone": check_time_zone,
    "contact_cap_per_day": lambda v: check_cap(v, "the cap per lead a day"),
    "contact_cap_per_week": lambda v: check_cap(v, "the cap per lead a week"),
    "skip_public_holidays": bool,
    "holiday_country": check_holiday_country,
}


def update_tenant_settings(db: Database, actor: Actor, changes: Mapping[str, Any]) -> TenantSettings:
    """Validate and save some settings (only the keys given); audit what changed from what."""
    actor.require(Permission.manage_settings)
    unknown = sorted(set(changes) - set(SETTING_NAMES))
    if unknown:
        raise ValidationError(f"unknown {plural_noun(len(unknown), 'setting')}: {', '.join(unknown)}")
    checked = {name: _SETTING_CHECKS[name](value) for name, value in changes.items()}
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        tenant = session.get(Tenant, actor.tenant_id, with_for_update=True)
        if tenant is None:
            raise NotFound(f"tenant {actor.tenant_id} does not exist")
        if "sms_sender_id" in checked:
            country = checked.get("default_country", tenant.default_country)
            checked["sms_sender_id"] = normalise_sms_sender(checked["sms_sender_id"], country)
            _refuse_a_taken_sms_sender(db, checked["sms_sender_id"], tenant_id=actor.tenant_id)
        # Only a new sender is checked: saving other settings never trips over the one in place.
        new_email_sender = checked.get("email_sender")
        if new_email_sender and new_email_sender != tenant.email_sender and (
            held := claimed_by_another_tenant(db, actor.tenant_id, new_email_sender)
        ):
            raise Conflict(held)
        # A window that ends before it starts spans midnight (22:00 to 06:00): core.compliance.send_window.
        diff = {
            name: {"from": getattr(tenant, name), "to": value}
            for name, value in checked.items()
            if getattr(tenant, name) != value
        }
        for name, change in diff.items():
            setattr(tenant, name, change["to"])
        if "sms_sender_id" in diff:
            sender = tenant.sms_sender_id
            tenant.sms_sender_key = sms_sender_key(sender) if sender else None
            try:
                session.flush()
            except IntegrityError as exc:
                # Two tenants saved the same sender id at once: the unique index stops the second.
                if "sms_sender_key" in str(exc.orig):
                    raise Conflict(SENDER_ID_TAKEN.format(sender=sender)) from None
                raise
        if diff:
            record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                         action="update", entity="tenant_settings", entity_id=actor.tenant_id,
                         details=diff)
        return _settings_of(tenant)


def _refuse_a_taken_sms_sender(db: Database, sender: str | None, *, tenant_id: int) -> None:
    if sender is None:
        return
    # A system session: the holder is another tenant, which the tenant's own session cannot see.
    with db.session(system=True, read_only=True) as session:
        if sms_sender_in_use(session, sms_sender_key(sender), tenant_id=tenant_id):
            raise Conflict(SENDER_ID_TAKEN.format(sender=sender))


# --- provider status -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderStatus:
    """Whether one channel's chosen provider has what it needs; names settings, never values."""

    channel: str
    provider: str
    status: str  # "configured" | "missing"
    missing: tuple[str, ...]
    note: str


def _missing(settings: Settings, required: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(env for attribute, env in required.items() if not getattr(settings, attribute))


def provider_status(settings: Settings, actor: Actor) -> list[ProviderStatus]:
    """The LLM, SMS and email providers in use and whether their settings are present."""
    actor.require(Permission.manage_settings)
    rows: list[tuple[str, str, tuple[str, ...], str]] = []
    if settings.llm_provider == "openai":
        base = "a custom OPENAI_BASE_URL" if settings.openai_base_url else "api.openai.com"
        rows.append(("LLM", "openai", _missing(settings, {"openai_api_key": "OPENAI_API_KEY"}),
                     f"ChatOpenAI via {base}; default model {settings.default_model}"))
    else:
        rows.append(("LLM", "offline", (), "deterministic offline writer: no network, no key"))
    if settings.sms_provider == "twilio":
        required = {"twilio_account_sid": "LEADFLOW_TWILIO_ACCOUNT_SID",
                    "twilio_auth_token": "LEADFLOW_TWILIO_AUTH_TOKEN",
                    "twilio_from_number": "LEADFLOW_TWILIO_FROM_NUMBER"}
        rows.append(("SMS", "twilio", _missing(settings, required), "sends through Twilio"))
    else:
        rows.append(("SMS", "outbox", (), "recorded in the database only: nothing leaves the machine"))
    if settings.email_provider == "smtp":
        required = {"smtp_host": "LEADFLOW_SMTP_HOST", "smtp_from": "LEADFLOW_SMTP_FROM"}
        if settings.smtp_username:
            required["smtp_password"] = "LEADFLOW_SMTP_PASSWORD"
        tls = " with STARTTLS" if settings.smtp_starttls else ""
        rows.append(("Email", "smtp", _missing(settings, required),
                     f"SMTP on port {settings.smtp_port}{tls}"))
    else:
        rows.append(("Email", "outbox", (), "recorded in the database only: nothing leaves the machine"))
    return [
        ProviderStatus(channel, provider, "missing" if missing else "configured", missing, note)
        for channel, provider, missing, note in rows
    ]


def provider_status_table(settings: Settings, actor: Actor) -> pd.DataFrame:
    """`provider_status` for a table: channel, provider, status, missing settings, note."""
    return pd.DataFrame(
        [{"channel": s.channel, "provider": s.provider, "status": s.status,
          "missing settings": ", ".join(s.missing), "note": s.note}
         for s in provider_status(settings, actor)],
        columns=["channel", "provider", "status", "missing settings", "note"],
    )


# --- audit log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit log, newest first, and how many entries match the filter."""

    entries: pd.DataFrame  # time, user, action, entity, entity_id, details
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class AuditFilterOptions:
    users: dict[int, str]  # id -> username, for a user filter
    actions: list[str]


def audit_filter_options(db: Database, actor: Actor) -> AuditFilterOptions:
    actor.require(Permission.view_audit_log)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        users = dict(session.execute(select(User.id, User.username).order_by(User.username)).all())
        actions = list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))
    return AuditFilterOptions(users=users, actions=actions)


def query_audit_log(
    db: Database,
    actor: Actor,
    *,
    user_id: int | None = None,
    action: str | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
    page_size: int = 50,
) -> AuditPage:
    """Audit entries filtered by user, action and UTC dates (inclusive), paged in SQL.

    A page past the last one gives the last page.
    """
    actor.require(Permission.view_audit_log)
    if page_size not in AUDIT_PAGE_SIZES:
        raise ValidationError(f"page size must be one of {', '.join(map(str, AUDIT_PAGE_SIZES))}")
    conditions = audit_conditions(user_id=user_id, action=action, since=since, until=until)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        total = session.scalar(select(func.count(AuditLog.id)).where(*conditions)) or 0
        # A page past the end (the filter narrowed) shows the last page rather than nothing.
        page = min(max(1, page), max(1, math.ceil(total / page_size)))
        rows = session.execute(
            select(AuditLog.created_at, User.username, AuditLog.action, AuditLog.entity,
                   AuditLog.entity_id, AuditLog.details)
            .outerjoin(User, User.id == AuditLog.user_id)
            .where(*conditions)
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    entries = pd.DataFrame(
        [
            {"time": r.created_at, "user": r.username or "system", "action": r.action,
             "entity": r.entity, "entity_id": r.entity_id,
             "details": json.dumps(r.details, ensure_ascii=False, sort_keys=True, default=str)}
            for r in rows
        ],
        columns=["time", "user", "action", "entity", "entity_id", "details"],
    )
    return AuditPage(entries=entries, total=int(total), page=page, page_size=page_size)
