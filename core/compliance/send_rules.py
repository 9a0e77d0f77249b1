"""When a message to a recipient may go out: the send window and public holidays, with the reason in words.

The contact caps need the ledger and are decided apart (core.compliance.frequency); this part
needs no database, so validate and send both ask it before anything is spent or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from core.compliance.frequency import ContactCaps
from core.compliance.public_holidays import holiday_name, recipient_country
from core.compliance.send_window import SendWindow, next_send_time, window_from_settings, zones_for_recipient
from core.text import sentence

if TYPE_CHECKING:
    from core.pipeline.state import TenantData


@dataclass(frozen=True)
class Deferral:
    """Not now: due again at `until` (UTC), for `reason` (words a sales manager reads)."""

    until: datetime
    reason: str


def window_deferral(
    window: SendWindow, zones: list[ZoneInfo], now: datetime, *, holiday_country: str | None
) -> Deferral | None:
    """None when a message may go now; else when it may, and why not now.

    With `holiday_country`, that country's public holidays close the whole local day. The
    reason names the holiday when it is what holds the message back: on the day the window
    would otherwise open, the recipient has a holiday.
    """
    plain = next_send_time(window, zones, now)
    if holiday_country is None:
        return None if plain == now else Deferral(plain, "outside the recipient's send window")
    country = holiday_country

    def closed(day: date) -> bool:
        return holiday_name(country, day) is not None

    until = next_send_time(window, zones, now, closed)
    if until == now:
        return None
    if until > plain:
        for zone in zones:
            name = holiday_name(country, plain.astimezone(zone).date())
            if name:
                return Deferral(until, f"public holiday in {country} ({name})")
    return Deferral(until, "outside the recipient's send window")


def rules_in_words(
    *,
    send_window_start: str,
    send_window_end: str,
    weekdays_only: bool,
    caps: ContactCaps,
    skip_public_holidays: bool,
    holiday_country: str | None,
    time_zone: str,
) -> list[str]:
    """The tenant's send rules as a sales manager reads them, one sentence each."""
    window = window_from_settings(send_window_start, send_window_end, weekdays_only)
    calendar = f"the {holiday_country} calendar" if holiday_country else "each recipient's own country"
    holidays = (
        f"Nothing goes out on public holidays ({calendar}): sends wait for the next day the window opens."
        if skip_public_holidays
        else "Public holidays are not skipped."
    )
    capped = (
        sentence(f"{caps.describe()}: a lead over a cap waits until the cap allows")
        if caps.active
        else "No cap on messages per lead."
    )
    return [
        f"Messages go out {window.describe()}, in each recipient's local time.",
        capped,
        holidays,
        f"Schedules and the times the dashboard shows are in {time_zone}.",
    ]


def recipient_deferral(
    tenant: TenantData, send_window: dict[str, Any] | None, lead: dict[str, Any], at: datetime
) -> Deferral | None:
    """When a message to the lead may go out under the tenant's and campaign's sending rules: the
    pipeline's sends and a person's answer to a reply alike (None: now). Here, not beside the
    pipeline's outcomes, so the Inbox's answer does not import LangGraph for it."""
    window = window_from_settings(
        tenant.send_window_start, tenant.send_window_end, tenant.weekdays_only, send_window
    )
    zones = zones_for_recipient(
        time_zone=lead.get("time_zone"),
        phone=lead.get("phone"),
        country=lead.get("country"),
        default_country=tenant.default_country,
    )
    holidays_of = None
    if tenant.skip_public_holidays:
        holidays_of = tenant.holiday_country or recipient_country(
            country=lead.get("country"), phone=lead.get("phone"), default_country=tenant.default_country
        )
    return window_deferral(window, zones, at, holiday_country=holidays_of)
