"""Dates a reply names ("back on March 3", "try me next quarter", "in two weeks"), as calendar days.

Plain rules over the text, pinned by tests: an explicit date (ISO, numeric, or with a month's
name) wins over a relative one. A date without a year is the next one to come. Numeric dates are
read month first for US tenants and day first elsewhere, as people there write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from dateutil import parser as date_parser
from dateutil.relativedelta import MO, relativedelta

_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_ORD = r"(?:st|nd|rd|th)?"
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "couple of": 2, "a couple of": 2, "few": 3, "a few": 3}

_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2,4}))?\b")
_MONTH_DAY = re.compile(rf"\b({_MONTHS})\.?\s+(\d{{1,2}}){_ORD}\b(?:,?\s+(\d{{4}}))?", re.IGNORECASE)
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}}){_ORD}\s+(?:of\s+)?({_MONTHS})\b\.?(?:,?\s+(\d{{4}}))?",
                        re.IGNORECASE)
_MONTH_ONLY = re.compile(rf"\b(?:in|until|after|from|by|early|mid|late|end of)\s+({_MONTHS})\b",
                         re.IGNORECASE)
_WEEKDAY = re.compile(rf"\b(?:on|until|next|this|from|after)\s+({_WEEKDAYS})\b", re.IGNORECASE)
_IN_UNITS = re.compile(
    r"\bin\s+(\d+|a couple of|couple of|a few|few|an?|one|two|three|four|five|six)\s+"
    r"(day|week|month|year)s?\b",
    re.IGNORECASE,
)
_NAMED = re.compile(r"\b(tomorrow|next week|next month|next quarter|next year|end of (?:the )?month|"
                    r"end of (?:the )?year|after the holidays|new year)\b", re.IGNORECASE)


@dataclass(frozen=True)
class FoundDate:
    day: date
    text: str  # the words the date was read from (the evidence)


def _month_number(name: str) -> int:
    return date_parser.parse(f"1 {name[:3]} 2000").month


def _next_occurrence(month: int, day: int, today: date) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _with_year(month: int, day: int, year: str | None, today: date) -> date | None:
    if year is None:
        return _next_occurrence(month, day, today)
    full = int(year) + (2000 if len(year) == 2 else 0)
    try:
        return date(full, month, day)
    except ValueError:
        return None


def _explicit(text: str, today: date, day_first: bool) -> FoundDate | None:
    if m := _ISO.search(text):
        try:
            return FoundDate(date(int(m[1]), int(m[2]), int(m[3])), m[0])
        except ValueError:
            pass
    if m := _MONTH_DAY.search(text):
        if found := _with_year(_month_number(m[1]), int(m[2]), m[3], today):
            return FoundDate(found, m[0])
    if m := _DAY_MONTH.search(text):
        if found := _with_year(_month_number(m[2]), int(m[1]), m[3], today):
            return FoundDate(found, m[0])
    if m := _NUMERIC.search(text):
        first, second = int(m[1]), int(m[2])
        month, day = (second, first) if day_first else (first, second)
        if found := _with_year(month, day, m[3], today):
            return FoundDate(found, m[0])
    return None


def _named(phrase: str, today: date) -> date:
    phrase = " ".join(phrase.lower().split())
    if phrase == "tomorrow":
        return today + timedelta(days=1)
    if phrase == "next week":
        return today + relativedelta(weekday=MO(+1), days=1)
    if phrase == "next month":
        return (today + relativedelta(months=1)).replace(day=1)
    if phrase == "next quarter":
        start = (today.month - 1) // 3 * 3 + 1
        return date(today.year, start, 1) + relativedelta(months=3)
    if phrase.startswith("end of") and phrase.endswith("month"):
        return (today + relativedelta(months=1)).replace(day=1) - timedelta(days=1)
    # next year, end of the year, after the holidays, new year: the first working days of January.
    return date(today.year + 1, 1, 2 if phrase == "after the holidays" else 1)


def _relative(text: str, today: date) -> FoundDate | None:
    if m := _IN_UNITS.search(text):
        raw = m[1].lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        unit = m[2].lower()
        delta = relativedelta(**{f"{unit}s": count})
        return FoundDate(today + delta, m[0])
    if m := _NAMED.search(text):
        return FoundDate(_named(m[1], today), m[0])
    if m := _MONTH_ONLY.search(text):
        month = _month_number(m[1])
        year = today.year if month > today.month else today.year + 1
        return FoundDate(date(year, month, 1), m[0])
    if m := _WEEKDAY.search(text):
        weekday = date_parser.parse(m[1]).weekday()
        ahead = (weekday - today.weekday()) % 7 or 7
        return FoundDate(today + timedelta(days=ahead), m[0])
    return None


def find_date(text: str, *, today: date, day_first: bool = False) -> FoundDate | None:
    """The first date the text names, explicit before relative; None when it names none."""
    return _explicit(text, today, day_first) or _relative(text, today)
