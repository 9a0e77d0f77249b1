"""The date range a report covers: presets a person picks ("last 30 days"), in UTC days, inclusive.

Every report takes a `Period`; `Period()` is all time. Bounds are half-open UTC datetimes so a
query reads `start <= t < end` and the last day counts whole.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.errors import ValidationError


class Preset(enum.StrEnum):
    """The ranges offered first; the values are what the page shows."""

    all_time = "All time"
    last_7 = "Last 7 days"
    last_30 = "Last 30 days"
    last_90 = "Last 90 days"
    this_month = "This month"
    custom = "Custom range"


_DAYS = {Preset.last_7: 7, Preset.last_30: 30, Preset.last_90: 90}


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """UTC days from `start` to `end`, both included; None on a side leaves it open."""

    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise ValidationError(f"the start date {self.start} is after the end date {self.end}")

    @property
    def is_all_time(self) -> bool:
        return self.start is None and self.end is None

    def conditions(self, column: Any) -> list[Any]:
        """SQL conditions keeping `column` (a UTC timestamp) inside the period."""
        found = []
        if self.start is not None:
            found.append(column >= day_start(self.start))
        if self.end is not None:
            found.append(column < day_start(self.end + timedelta(days=1)))
        return found

    def describe(self) -> str:
        """'1 Nov 2026 to 30 Nov 2026 (UTC days)', for captions and exported file names."""
        if self.is_all_time:
            return "all time"
        start = self.start.strftime("%-d %b %Y") if self.start else "the beginning"
        end = self.end.strftime("%-d %b %Y") if self.end else "today"
        return f"{start} to {end} (UTC days)"

    def slug(self) -> str:
        return "all-time" if self.is_all_time else f"{self.start or 'start'}-to-{self.end or 'now'}"


def period_for(preset: Preset, today: date, custom: tuple[date, date] | None = None) -> Period:
    """The period a preset names on `today`; `custom` (first day, last day) for Preset.custom."""
    if preset is Preset.all_time:
        return Period()
    if preset is Preset.this_month:
        return Period(today.replace(day=1), today)
    if preset is Preset.custom:
        if custom is None:
            raise ValidationError("pick the first and the last day of the range")
        return Period(*custom)
    return Period(today - timedelta(days=_DAYS[preset] - 1), today)


ALL_TIME = Period()
