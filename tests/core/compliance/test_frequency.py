"""Contact caps: the rolling day and week, exactly at the cap, when a capped lead may go again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.compliance.frequency import ContactCaps, cap_allows_at, capping_window, check_cap
from core.errors import ValidationError

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("caps", "sent_hours_ago", "expected"),
    [
        (ContactCaps(per_day=1), [], NOW),  # nothing sent: now
        (ContactCaps(per_day=1), [23], NOW + H),  # exactly at the cap: when the one ages out
        (ContactCaps(per_day=2), [23], NOW),  # one below the cap: now
        (ContactCaps(per_day=2), [20, 5], NOW + 4 * H),  # at the cap of 2: the oldest ages out
        (ContactCaps(per_day=1), [24], NOW),  # exactly a day ago has left the rolling day
        (ContactCaps(per_day=1), [30, 48], NOW),  # older than a day
        (ContactCaps(per_week=3), [160, 100, 2], NOW + 8 * H),  # the week's oldest leaves at 168 h
        (ContactCaps(per_week=3), [168, 100, 2], NOW),  # exactly a week ago does not count
        (ContactCaps(per_day=1, per_week=3), [150, 100, 2], NOW + 22 * H),  # the day holds longer
        (ContactCaps(per_day=5, per_week=3), [160, 100, 2], NOW + 8 * H),  # the week holds longer
        (ContactCaps(), [1, 1, 1], NOW),  # no cap
    ],
)
def test_cap_allows_at(caps: ContactCaps, sent_hours_ago: list[int], expected: datetime) -> None:
    assert cap_allows_at(caps, [NOW - h * H for h in sent_hours_ago], NOW) == expected


def test_the_cap_that_holds_the_lead_back_is_named() -> None:
    caps = ContactCaps(per_day=1, per_week=3)
    assert capping_window(caps, [NOW - 2 * H], NOW) == "1 message per lead a day"
    assert (
        capping_window(caps, [NOW - 50 * H, NOW - 40 * H, NOW - 30 * H], NOW) == "3 messages per lead a week"
    )


@pytest.mark.parametrize(
    ("caps", "words"),
    [
        (
            ContactCaps(per_day=1, per_week=3),
            "at most 1 message per lead a day and 3 a week (all campaigns together)",
        ),
        (ContactCaps(per_week=3), "at most 3 messages per lead a week (all campaigns together)"),
        (ContactCaps(), "no cap on messages per lead"),
    ],
)
def test_caps_in_words(caps: ContactCaps, words: str) -> None:
    assert caps.describe() == words


@pytest.mark.parametrize(
    ("value", "expected"), [("", None), (None, None), (" 3 ", 3), (1, 1), ("1000", 1000)]
)
def test_check_cap_accepts(value: object, expected: int | None) -> None:
    assert check_cap(value, "the daily cap") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "between 1 and 1000"), ("-1", "between 1 and 1000"), ("two", "'two' is not a whole number")],
)
def test_check_cap_refuses(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_cap(value, "the daily cap")
