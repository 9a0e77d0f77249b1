"""Send windows in the recipient's local time: when a message may go out, and when next.

The window comes from the tenant (`Tenant.send_window_start/end`, `weekdays_only`, default
08:00-21:00 every day) unless the campaign overrides it (`Campaign.send_window`). The recipient's
zone is the lead's own time zone when known; otherwise every zone its phone number (or, lacking
one, its country) could be in, and the message may only go when the window is open in all of them:
the most restrictive reading. Arithmetic is done on aware datetimes with zoneinfo, so DST changes
move the window with the local clock. Days on which nothing may go out at all (public holidays,
core.compliance.public_holidays) close the window for the whole local day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from core.errors import ValidationError

DEFAULT_START = time(8, 0)
DEFAULT_END = time(21, 0)
SEARCH_DAYS = 9  # a weekly window always opens within this many days
CLOSED_DAYS_SEARCH_DAYS = 40  # ... and within this many when whole days (holidays) may be closed
_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class SendWindow:
    """Local hours in which messages may go out; `end` before `start` means it spans midnight,
    and `end` equal to `start` means all day (no quiet hours)."""

    start: time = DEFAULT_START
    end: time = DEFAULT_END
    weekdays_only: bool = False

    def is_open_at(self, local: datetime) -> bool:
        if self.weekdays_only and local.weekday() >= 5:
            return False
        clock = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def describe(self) -> str:
        """The window in words: "08:00 to 21:00", "22:00 to 06:00 the next morning, weekdays only"."""
        if self.start == self.end:
            hours = "all day"
        else:
            overnight = " the next day" if self.end < self.start else ""
            hours = f"{self.start:%H:%M} to {self.end:%H:%M}{overnight}"
        return f"{hours}, weekdays only" if self.weekdays_only else f"{hours}, every day"


ClosedDay = Callable[[date], bool]


def parse_clock(value: str, *, what: str = "time") -> time:
    """'08:00' -> time(8, 0), with a message a person can act on when it is not a time."""
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise ValidationError(f"{what} '{value}' is not a time of day such as 08:00") from None


def window_from_settings(
    tenant_start: str | None,
    tenant_end: str | None,
    tenant_weekdays_only: bool | None,
    campaign_override: Mapping[str, Any] | None = None,
) -> SendWindow:
    """The effective window: the campaign's override where it sets a key, else the tenant's."""
    override = campaign_override or {}
    start = override.get("start") or tenant_start
    end = override.get("end") or tenant_end
    weekdays = override.get("weekdays_only")
    return SendWindow(
        start=parse_clock(start, what="send window start") if start else DEFAULT_START,
        end=parse_clock(end, what="send window end") if end else DEFAULT_END,
        weekdays_only=bool(tenant_weekdays_only if weekdays is None else weekdays),
    )


# ZoneInfo keeps only a few zones loaded; a country-wide recipient (a US lead with no phone:
# every US zone) checked twice per lead would otherwise read its zone files from disk each time.
@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zones(names: Iterable[str]) -> list[ZoneInfo]:
    zones = [z for z in (_zone(n) for n in names if n and n != _UNKNOWN_ZONE) if z is not None]
    return list({z.key: z for z in zones}.values())


def zones_for_recipient(
    *, time_zone: str | None, phone: str | None, country: str | None, default_country: str = "US"
) -> list[ZoneInfo]:
    """Every zone the recipient could be in: their own, else their number's, else their country's."""
    if time_zone and (own := _zone(time_zone)) is not None:
        return [own]
    if phone:
        try:
            number = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            zones = _zones(phone_timezones.time_zones_for_number(number))
            if zones:
                return zones
    for region in (country, default_country):
        if region:
            zones = _zones(_country_zones(region.upper()))
            if zones:
                return zones
    return [ZoneInfo("UTC")]


def _country_zones(region: str) -> tuple[str, ...]:
    code = phonenumbers.country_code_for_region(region)
    if not code:
        return ()
    example = phonenumbers.example_number(region)
    if example is None:
        return ()
    # A number with only the country code is not geographic: this yields every zone of the
    # country code (for +1 that is all of North America, the most restrictive reading).
    return tuple(phone_timezones._country_level_time_zones_for_number(example))


def _window_starts(
    window: SendWindow, zone: ZoneInfo, around: datetime, *, days: int = SEARCH_DAYS, midnights: bool = False
) -> list[datetime]:
    """The instants at which the window opens in `zone` over the next `days` days.

    With `midnights`, each local midnight too: a window open across midnight whose evening was a
    closed day opens again when the day changes.
    """
    local_day = around.astimezone(zone).date()
    starts = []
    for offset in range(-1, days):
        day = local_day + timedelta(days=offset)
        starts.append(_local_instant(day, window.start, zone))
        if midnights:
            starts.append(_local_instant(day, time(0, 0), zone))
    return starts


def _local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time.

    A time skipped by a spring-forward is read with the offset before the change (fold=0),
    landing as far after the gap as it was into it; a repeated time maps to its first occurrence.
    """
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def is_open(
    window: SendWindow, zones: Iterable[ZoneInfo], instant: datetime, closed_day: ClosedDay | None = None
) -> bool:
    for zone in zones:
        local = instant.astimezone(zone)
        if not window.is_open_at(local) or (closed_day is not None and closed_day(local.date())):
            return False
    return True


def next_send_time(
    window: SendWindow, zones: list[ZoneInfo], now: datetime, closed_day: ClosedDay | None = None
) -> datetime:
    """`now` when the window is open in every zone, else the first instant it is (UTC).

    `closed_day(local_date)` says whether a whole local day is closed (a public holiday).
    """
    now = now.astimezone(UTC)
    if is_open(window, zones, now, closed_day):
        return now
    days = SEARCH_DAYS if closed_day is None else CLOSED_DAYS_SEARCH_DAYS
    candidates = sorted(
        {
            start
            for zone in zones
            for start in _window_starts(window, zone, now, days=days, midnights=closed_day is not None)
            if start > now
        }
    )
    for candidate in candidates:
        if is_open(window, zones, candidate, closed_day):
            return candidate
    # The zones are too far apart for one shared window: open with the zone whose clock is
    # furthest behind, so nobody is messaged before their window opens.
    latest = min(zones, key=lambda z: now.astimezone(z).utcoffset() or timedelta(0))
    if len(zones) > 1:
        return next_send_time(window, [latest], now, closed_day)
    # Closed for longer than the search reaches (never with real calendars): try again then.
    return candidates[-1]
