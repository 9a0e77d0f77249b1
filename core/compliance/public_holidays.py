"""Public holidays per country (the `holidays` package): the days on which a tenant may choose not to send.

The calendar is the tenant's chosen country, else the recipient's: the lead's country, else its
phone number's, else the tenant's default country. Only national holidays count (no
subdivision is known for a lead); a country the package does not cover has none.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays
import phonenumbers

from core.errors import ValidationError
from core.tenants import country_names

ENGLISH = "en_US"


@lru_cache(maxsize=1)
def supported_countries() -> frozenset[str]:
    """The two-letter codes of the countries with a calendar (the package also lists aliases)."""
    return frozenset(code for code in holidays.list_supported_countries() if len(code) == 2)


@lru_cache(maxsize=512)
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    language = ENGLISH if ENGLISH in holidays.country_holidays(country).supported_languages else None
    return holidays.country_holidays(country, years=year, language=language)


def holiday_name(country: str | None, day: date) -> str | None:
    """The public holiday on `day` in `country` ("Christmas Day"), or None."""
    code = (country or "").upper()
    if code not in supported_countries():
        return None
    name = _calendar(code, day.year).get(day)
    # Two holidays on one day come as "A; B": both are named.
    return str(name).replace(";", ",") if name else None


def recipient_country(*, country: str | None, phone: str | None, default_country: str) -> str:
    """The recipient's country: the lead's own, else its phone number's, else the tenant's default."""
    if country and len(country.strip()) == 2:
        return country.strip().upper()
    if phone:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
        except phonenumbers.NumberParseException:
            region = None
        if region and region != "ZZ":
            return region
    return default_country.upper()


def holiday_calendars() -> list[tuple[str, str]]:
    """The calendars a tenant may choose: (code, "Germany (DE)"), by name."""
    names = country_names()
    return sorted(
        ((code, f"{names.get(code, code)} ({code})") for code in supported_countries()),
        key=lambda item: item[1],
    )


def check_holiday_country(value: str | None) -> str | None:
    """A holiday calendar as stored: a country code the package covers; None (blank): the recipient's."""
    code = (value or "").strip().upper()
    if not code:
        return None
    if code not in supported_countries():
        raise ValidationError(
            f"there is no public holiday calendar for '{value}'; choose a two-letter country code "
            "such as US, GB or DE, or leave it blank for each recipient's own country"
        )
    return code
