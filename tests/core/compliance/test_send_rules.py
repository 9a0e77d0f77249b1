"""Send windows with public holidays: the recipient's calendar, windows across midnight, DST, reasons."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.compliance.public_holidays import holiday_name, recipient_country
from core.compliance.send_rules import Deferral, window_deferral
from core.compliance.send_window import SendWindow

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OVERNIGHT = SendWindow(start=time(22, 0), end=time(6, 0))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("country", "day", "name"),
    [
        ("DE", date(2026, 12, 25), "Christmas Day"),
        ("DE", date(2026, 10, 3), "German Unity Day"),
        ("US", date(2026, 10, 3), None),
        ("US", date(2026, 11, 26), "Thanksgiving Day"),
        ("GB", date(2026, 11, 26), None),
        ("de", date(2026, 12, 25), "Christmas Day"),
        ("XX", date(2026, 12, 25), None),  # a calendar the package does not have: no holidays
        (None, date(2026, 12, 25), None),
    ],
)
def test_holiday_name(country: str | None, day: date, name: str | None) -> None:
    assert holiday_name(country, day) == name


@pytest.mark.parametrize(
    ("country", "now", "expected"),
    [
        # German Unity Day (Saturday 3 October 2026) in Berlin, 12:00 local: in DE it waits for
        # Sunday 08:00 local (06:00 UTC, CEST); the same day is no holiday in the US calendar.
        (
            "DE",
            utc(2026, 10, 3, 10, 0),
            Deferral(utc(2026, 10, 4, 6, 0), "public holiday in DE (German Unity Day)"),
        ),
        ("US", utc(2026, 10, 3, 10, 0), None),
        # Christmas Eve 23:00 in Berlin: the window opens on Christmas Day, a holiday, and on the
        # Second Day of Christmas; Sunday 27 December 08:00 CET is 07:00 UTC.
        (
            "DE",
            utc(2026, 12, 24, 22, 0),
            Deferral(utc(2026, 12, 27, 7, 0), "public holiday in DE (Christmas Day)"),
        ),
        # No holiday calendar: only the send window.
        (
            None,
            utc(2026, 12, 24, 22, 0),
            Deferral(utc(2026, 12, 25, 7, 0), "outside the recipient's send window"),
        ),
    ],
)
def test_a_holiday_in_the_recipients_calendar_defers_to_the_next_open_day(
    country: str | None, now: datetime, expected: Deferral | None
) -> None:
    assert window_deferral(SendWindow(), [BERLIN], now, holiday_country=country) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 22:00-06:00 in New York (EST, UTC-5) on Wednesday 18 November 2026.
        (utc(2026, 11, 19, 3, 0), None),  # 22:00 local: the first open minute
        (utc(2026, 11, 19, 10, 59), None),  # 05:59 local: still open after midnight
        (utc(2026, 11, 19, 11, 0), utc(2026, 11, 20, 3, 0)),  # 06:00 local: closed until 22:00
        (utc(2026, 11, 18, 20, 0), utc(2026, 11, 19, 3, 0)),  # 15:00 local
        # Thanksgiving (Thursday 26 November): the window of the evening before is open until
        # midnight, closed on the holiday itself, and opens again at midnight after it.
        (utc(2026, 11, 26, 2, 0), utc(2026, 11, 26, 3, 0)),  # 21:00 Wed local -> 22:00 Wed local
        (utc(2026, 11, 26, 4, 59), None),  # 23:59 Wed local: open
        (utc(2026, 11, 26, 5, 0), utc(2026, 11, 27, 5, 0)),  # 00:00 Thu local -> 00:00 Fri local
        (utc(2026, 11, 27, 3, 0), utc(2026, 11, 27, 5, 0)),  # 22:00 Thu local -> 00:00 Fri local
    ],
)
def test_a_window_across_midnight_with_holidays(now: datetime, expected: datetime | None) -> None:
    deferral = window_deferral(OVERNIGHT, [NEW_YORK], now, holiday_country="US")
    assert (deferral.until if deferral else None) == expected


def test_a_window_across_midnight_deferred_by_a_holiday_names_it() -> None:
    deferral = window_deferral(OVERNIGHT, [NEW_YORK], utc(2026, 11, 27, 3, 0), holiday_country="US")
    assert deferral == Deferral(utc(2026, 11, 27, 5, 0), "public holiday in US (Thanksgiving Day)")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Good Friday 2026 is 3 April; Easter Monday 6 April. Europe changes to summer time on
        # Sunday 29 March, so the window's 08:00 is 06:00 UTC after it and 07:00 UTC before.
        (utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 6, 0)),  # Saturday 22:00 CET -> Sunday 08:00 CEST
        (utc(2026, 4, 2, 20, 0), utc(2026, 4, 4, 6, 0)),  # Thursday evening: Friday is Good Friday
        (utc(2026, 4, 5, 20, 0), utc(2026, 4, 7, 6, 0)),  # Sunday evening: Monday is Easter Monday
    ],
)
def test_holidays_and_dst_in_berlin(now: datetime, expected: datetime) -> None:
    deferral = window_deferral(SendWindow(), [BERLIN], now, holiday_country="DE")
    assert deferral is not None and deferral.until == expected


@pytest.mark.parametrize(
    ("country", "phone", "default", "expected"),
    [
        ("de", "+12125550101", "US", "DE"),  # the lead's own country first
        (None, "+493012345678", "US", "DE"),  # then its number's
        ("Germany", "+442071234567", "US", "GB"),  # a country that is not a code: the number's
        (None, None, "fr", "FR"),  # then the tenant's default
    ],
)
def test_recipient_country(country: str | None, phone: str | None, default: str, expected: str) -> None:
    assert recipient_country(country=country, phone=phone, default_country=default) == expected


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (SendWindow(), "08:00 to 21:00, every day"),
        (OVERNIGHT, "22:00 to 06:00 the next day, every day"),
        (SendWindow(start=time(9, 0), end=time(9, 0), weekdays_only=True), "all day, weekdays only"),
    ],
)
def test_windows_in_words(window: SendWindow, words: str) -> None:
    assert window.describe() == words
