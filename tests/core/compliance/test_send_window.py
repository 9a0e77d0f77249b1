"""Send windows in the recipient's local time: zones, boundaries, weekdays, DST, unknown zones."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.compliance.send_window import (
    SendWindow,
    next_send_time,
    window_from_settings,
    zones_for_recipient,
)
from core.errors import ValidationError

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 2026-11-18 is a Wednesday; New York is UTC-5 in November.
        (utc(2026, 11, 18, 15, 0), utc(2026, 11, 18, 15, 0)),  # 10:00 local: open
        (utc(2026, 11, 18, 13, 0), utc(2026, 11, 18, 13, 0)),  # 08:00 local: the first open minute
        (utc(2026, 11, 18, 12, 59), utc(2026, 11, 18, 13, 0)),  # 07:59 local: opens at 08:00
        (utc(2026, 11, 19, 1, 59), utc(2026, 11, 19, 1, 59)),  # 20:59 local: still open
        (utc(2026, 11, 19, 2, 0), utc(2026, 11, 19, 13, 0)),  # 21:00 local: closed until tomorrow
        (utc(2026, 11, 19, 4, 30), utc(2026, 11, 19, 13, 0)),  # 23:30 local
    ],
)
def test_default_window_in_new_york(now: datetime, expected: datetime) -> None:
    assert next_send_time(SendWindow(), [NEW_YORK], now) == expected


def test_weekdays_only_defers_a_saturday_to_monday_morning() -> None:
    saturday_noon = utc(2026, 11, 21, 17, 0)
    monday_eight = utc(2026, 11, 23, 13, 0)
    assert next_send_time(SendWindow(weekdays_only=True), [NEW_YORK], saturday_noon) == monday_eight
    assert next_send_time(SendWindow(), [NEW_YORK], saturday_noon) == saturday_noon


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Spring forward on 2026-03-08: 08:00 local is 12:00 UTC after the change (EDT, UTC-4) ...
        (utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 12, 0)),
        # ... and 13:00 UTC the day before (EST, UTC-5).
        (utc(2026, 3, 7, 5, 0), utc(2026, 3, 7, 13, 0)),
        # Fall back on 2026-11-01: 08:00 EST is 13:00 UTC.
        (utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 13, 0)),
    ],
)
def test_window_follows_dst_changes(now: datetime, expected: datetime) -> None:
    assert next_send_time(SendWindow(), [NEW_YORK], now) == expected


def test_window_starting_inside_a_dst_gap_opens_after_the_gap() -> None:
    window = SendWindow(start=time(2, 30), end=time(5, 0))
    # 02:30 does not exist in New York on 2026-03-08: it is read with the offset before the
    # change (EST), which is 03:30 EDT = 07:30 UTC, an hour after the gap, never inside it.
    opens = next_send_time(window, [NEW_YORK], utc(2026, 3, 8, 5, 0))
    assert opens.astimezone(NEW_YORK).hour == 3
    assert opens == utc(2026, 3, 8, 7, 30)


def test_window_spanning_midnight() -> None:
    window = SendWindow(start=time(22, 0), end=time(2, 0))
    assert next_send_time(window, [NEW_YORK], utc(2026, 11, 18, 4, 0)) == utc(2026, 11, 18, 4, 0)  # 23:00
    assert next_send_time(window, [NEW_YORK], utc(2026, 11, 18, 15, 0)) == utc(2026, 11, 19, 3, 0)


@pytest.mark.parametrize("hour", [0, 3, 8, 12, 20, 23])
def test_equal_start_and_end_mean_all_day(hour: int) -> None:
    window = SendWindow(start=time(0, 0), end=time(0, 0))
    at = utc(2026, 11, 18, hour, 59)
    assert next_send_time(window, [NEW_YORK, ZoneInfo("Asia/Tokyo")], at) == at


def test_all_day_on_weekdays_only_waits_for_monday() -> None:
    window = SendWindow(start=time(0, 0), end=time(0, 0), weekdays_only=True)
    saturday_noon = utc(2026, 11, 21, 17, 0)  # 12:00 in New York
    assert next_send_time(window, [NEW_YORK], saturday_noon) == utc(2026, 11, 23, 5, 0)  # Mon 00:00


def test_several_possible_zones_use_the_most_restrictive_window() -> None:
    zones = [ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")]
    # 12:00 UTC: 07:00 in New York, 04:00 in Los Angeles; both open only at 08:00 Los Angeles.
    assert next_send_time(SendWindow(), zones, utc(2026, 11, 18, 12, 0)) == utc(2026, 11, 18, 16, 0)
    # 03:00 UTC: 22:00 in New York (closed), 19:00 in Los Angeles (open): wait for New York.
    assert next_send_time(SendWindow(), zones, utc(2026, 11, 19, 3, 0)) == utc(2026, 11, 19, 16, 0)


@pytest.mark.parametrize(
    ("time_zone", "phone", "country", "expected"),
    [
        ("Europe/Berlin", "+14155550100", "US", {"Europe/Berlin"}),
        (None, "+14155550100", None, {"America/Los_Angeles"}),
        (None, "+12125550100", None, {"America/New_York"}),
        ("Not/AZone", "+442071838750", None, {"Europe/London"}),
        (None, None, "DE", {"Europe/Berlin"}),
    ],
)
def test_zones_for_recipient(
    time_zone: str | None, phone: str | None, country: str | None, expected: set[str]
) -> None:
    zones = zones_for_recipient(time_zone=time_zone, phone=phone, country=country)
    assert {z.key for z in zones} == expected


def test_unknown_zone_in_a_multi_zone_country_takes_every_zone() -> None:
    zones = {z.key for z in zones_for_recipient(time_zone=None, phone=None, country="US")}
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= zones
    # A message to "somewhere in the US" waits until every US zone is inside 08:00-20:00: the last
    # to open is Guam (UTC+10), at 08:00 on the 19th, while New York (17:00) is still open.
    opens = next_send_time(SendWindow(), [zoneinfo_of(z) for z in zones], utc(2026, 11, 18, 13, 0))
    assert opens == utc(2026, 11, 18, 22, 0)


def zoneinfo_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def test_campaign_override_wins_key_by_key() -> None:
    window = window_from_settings("08:00", "21:00", False, {"start": "09:30", "weekdays_only": True})
    assert window == SendWindow(start=time(9, 30), end=time(21, 0), weekdays_only=True)
    assert window_from_settings(None, None, None, None) == SendWindow()


def test_a_bad_time_is_a_message_for_people() -> None:
    with pytest.raises(ValidationError, match="send window start '9am'"):
        window_from_settings("9am", "21:00", False)
