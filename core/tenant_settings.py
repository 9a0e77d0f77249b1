"""Tenant settings an admin edits: what each may hold, checked, and saved with an audit entry."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import time
from decimal import Decimal
from email.utils import formataddr, parseaddr
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from core.audit import record_audit
from core.compliance.frequency import check_cap
from core.compliance.public_holidays import check_holiday_country
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.models import Tenant
from core.money import MICROUSD_PER_USD
from core.permissions import Actor, Permission
from core.sender_verification import claimed_by_another_tenant
from core.tenants import (
    SENDER_ID_TAKEN,
    check_country,
    check_time_zone,
    normalise_sms_sender,
    sms_sender_in_use,
    sms_sender_key,
)
from core.text import plural_noun

MAX_MONTHLY_BUDGET_USD = 10_000_000
MAX_PRICE_PER_MILLION_USD = 10_000
MAX_POSTAL_ADDRESS_LENGTH = 500
MAX_ALLOW_LIST_ENTRIES = 200
MAX_PLAYBOOK_SECTIONS = 200
MAX_PLAYBOOK_ITEMS = 50
MAX_PLAYBOOK_ITEM_LENGTH = 500
PLAYBOOK_KEYS = ("value_propositions", "proof_points")
EMPTY_PLAYBOOK: dict[str, dict[str, list[str]]] = {"default": {key: [] for key in PLAYBOOK_KEYS}}
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
HOSTNAME_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


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
