"""Phones to E.164: one number for one country (`PhoneNormaliser`), and the numbers of an import,
read in the row's country or the import's only where that is safe (`PhoneReader`).

Parsing phone numbers is the hot spot of an import, so `PhoneNormaliser` caches by the raw text
and by the number with its formatting stripped ("(415) 555-0100" and "415.555.0100" are parsed
once), checks validity for the tenant's country first (cheap) before the general check, and
reads the time zone from the prefix table directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

# Longer than this a phone is not one (phonenumbers refuses more than 250 characters); refusing
# early also keeps the parser's regular expressions away from megabyte-long text.
MAX_PHONE_CHARS = 250

_EXTENSION = re.compile(r"\s*(?:,|;|ext\.?|extension|ext|x|#)\s*\d{1,7}\s*$", re.IGNORECASE)
_FORMATTING = re.compile(r"[\s().\-/\u00a0\u2010-\u2015\u2212]")
_DIGITS = re.compile(r"^\+?\d+$")
_SCIENTIFIC = re.compile(r"^\+?\d(?:[.,]\d+)?[eE]\+?\d{1,2}$")
_WHOLE_FLOAT = re.compile(r"^(\+?\d+)\.0+$")
_UNKNOWN_ZONE = "Etc/Unknown"
PHONE_CACHE_SIZE = 200_000


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """A parsed phone: E.164, its region and time zone, or a problem (with `{raw}` to fill in)."""

    e164: str | None = None
    region: str | None = None
    time_zone: str | None = None
    problem: str | None = None
    international: bool = False  # written with its country code, so no country was guessed
    wrong_country: bool = False  # a national number the country does not accept (others may)

    def error(self, raw: str) -> str | None:
        return None if self.problem is None else self.problem.format(raw=raw)


EMPTY_PHONE = PhoneResult()


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matches(national: str, desc: PhoneNumberDesc | None) -> bool:
    """The library's own rule for a number type: one of its lengths and its whole pattern."""
    if desc is None or not desc.national_number_pattern:
        return False
    if desc.possible_length and len(national) not in desc.possible_length:
        return False
    return _pattern(desc.national_number_pattern).fullmatch(national) is not None


def _zones_for_e164(e164: str) -> Sequence[str]:
    """time_zones_for_geographical_number for a number already in E.164: the same longest-prefix
    look-up in the same table, without formatting the number a second time."""
    for length in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        zones = TIMEZONE_DATA.get(e164[1 : 1 + length])
        if zones is not None:
            return zones
    return (_UNKNOWN_ZONE,)


class PhoneNormaliser:
    """Phones to E.164 for one default country, cached by the number with its formatting stripped.

    One instance lives for one import, so its cache never outgrows the file.
    """

    def __init__(self, default_country: str) -> None:
        self.region = default_country.upper()
        self._by_key: dict[str, PhoneResult] = {}
        self._nanp = phonenumbers.country_code_for_region(self.region) == 1
        self._metadata = PhoneMetadata.metadata_for_region(self.region)

    def __call__(self, raw: str) -> PhoneResult:
        text = raw.strip().lstrip("'\u2019").strip()
        if len(text) > MAX_PHONE_CHARS:
            return PhoneResult(
                problem=f"phone '{{raw}}' is too long to be a phone number ({len(text):,} characters)"
            )
        if text.endswith("0") and "." in text:
            whole = _WHOLE_FLOAT.match(text)  # a number a spreadsheet stored as 4155550100.0
            text = whole.group(1) if whole else text
        key = _FORMATTING.sub("", text)
        if not _DIGITS.match(key):
            unusual = self._key_of_unusual(text)
            if unusual is None:
                return EMPTY_PHONE if not text else self._from_scientific(text)
            key = unusual
        elif key.startswith("00"):
            key = "+" + key[2:]  # the international prefix used outside North America
        found = self._by_key.get(key)
        if found is None:
            if len(self._by_key) >= PHONE_CACHE_SIZE:
                self._by_key.clear()  # bounded memory on huge files; results stay correct
            found = self._by_key[key] = self._parse(key)
        return found

    def _key_of_unusual(self, text: str) -> str | None:
        """The key of text that is not plain digits: None for empty or scientific notation."""
        if text.lower().startswith("tel:"):
            text = text[4:].strip()
        if not text or _SCIENTIFIC.match(text):
            return None
        text = _EXTENSION.sub("", text)
        key = _FORMATTING.sub("", text)
        if _DIGITS.match(key):
            return "+" + key[2:] if key.startswith("00") else key
        return text  # letters (vanity numbers) or junk: let phonenumbers judge

    def _valid_here(self, number: phonenumbers.PhoneNumber) -> bool:
        """is_valid_number_for_region for the default country, fixed-line and mobile tried first.

        The library tries every number type (premium, toll-free, pager, ...) before the common
        ones; a match on the general pattern and on the fixed-line or mobile pattern is already
        a valid number, and anything else gets the full check.
        """
        metadata = self._metadata
        if metadata is not None and number.country_code == metadata.country_code:
            national = phonenumbers.national_significant_number(number)
            if _matches(national, metadata.general_desc) and (
                _matches(national, metadata.fixed_line) or _matches(national, metadata.mobile)
            ):
                return True
        return phonenumbers.is_valid_number_for_region(number, self.region)

    def _nanp_number(self, key: str) -> phonenumbers.PhoneNumber | None:
        """A North American number built directly: what parse() returns for it, much faster."""
        digits = key.removeprefix("+")
        if not (key.startswith("+") or self._nanp):
            return None
        if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
            return phonenumbers.PhoneNumber(country_code=1, national_number=int(digits[1:]))
        if len(digits) == 10 and not key.startswith("+") and digits[0] in "23456789":
            return phonenumbers.PhoneNumber(country_code=1, national_number=int(digits))
        return None

    def _from_scientific(self, text: str) -> PhoneResult:
        try:
            number = Decimal(text.replace(",", ".").lstrip("+"))
        except InvalidOperation:
            return PhoneResult(problem="phone '{raw}' is not a phone number")
        digits = str(int(number))
        mantissa = re.split(r"[eE]", text)[0]
        written = sum(ch.isdigit() for ch in mantissa)
        if number != number.to_integral_value() or written < len(digits):
            return PhoneResult(
                problem="phone '{raw}' lost its last digits in a spreadsheet (scientific "
                "notation); format the column as text and export the file again"
            )
        return self._parse(("+" if text.startswith("+") else "") + digits)

    def _parse(self, key: str) -> PhoneResult:
        international = key.startswith("+")
        number = self._nanp_number(key)
        if number is None:
            try:
                number = phonenumbers.parse(key, self.region)
            except phonenumbers.NumberParseException:
                return PhoneResult(problem="phone '{raw}' is not a phone number")
        if self._valid_here(number):
            region: str | None = self.region
        elif phonenumbers.is_valid_number(number):
            region = phonenumbers.region_code_for_number(number)
        else:
            if international:
                return PhoneResult(problem="phone '{raw}' is not a valid phone number", international=True)
            return PhoneResult(
                problem="phone '{raw}' is not a valid number for " + self.region, wrong_country=True
            )
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        zones = _zones_for_e164(e164)
        time_zone = zones[0] if len(zones) == 1 and zones[0] != _UNKNOWN_ZONE else None
        return PhoneResult(
            e164=e164,
            region=None if region == "001" else region,
            time_zone=time_zone,
            international=international,
        )


# "(281) 741-1316", "281-741-1316", "1 (281) 741.1316": how North American numbers are written.
# Ten plain digits are not enough to tell; these separators are.
_NANP_STYLE = re.compile(r"^(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}$")


def written_like_nanp(raw: str) -> bool:
    """The number is formatted the North American way (area code, exchange, line)."""
    return _NANP_STYLE.match(_EXTENSION.sub("", raw.strip())) is not None


def _nanp(country: str) -> bool:
    return phonenumbers.country_code_for_region(country) == 1


class PhoneReader:
    """Phones of one import: national numbers read in a country only where that is safe.

    `country` is the import's phone country (the tenant's unless the person chose another). A
    number written with its country code needs no country. A national number is read in the
    row's own country and in the import's: when only one accepts it, that one is taken; when
    both accept it as different numbers, or the number is written the North American way but
    read outside North America, nothing is guessed: the phone is left empty with a message
    naming the readings.
    """

    def __init__(self, country: str) -> None:
        self.country = country.upper()
        self.phones = PhoneNormaliser(self.country)
        self._by_country: dict[str, PhoneNormaliser] = {self.country: self.phones}
        self._nanp_here = _nanp(self.country)

    def _in(self, country: str) -> PhoneNormaliser:
        found = self._by_country.get(country)
        if found is None:
            found = self._by_country[country] = PhoneNormaliser(country)
        return found

    def __call__(self, raw: str, row_country: str | None = None) -> PhoneResult:
        home = self.phones(raw)
        if home.international or not raw.strip() or (home.problem and not home.wrong_country):
            return home
        if (
            row_country is None
            or row_country == self.country
            or row_country not in phonenumbers.SUPPORTED_REGIONS
        ):
            if home.e164 is None or self._nanp_here:
                return home
            return self._unless_written_like_nanp(raw, home, self.country, "the import's phone country")
        row = self._in(row_country)(raw)
        if home.e164 and row.e164:
            if home.e164 == row.e164:
                return home
            return PhoneResult(
                problem=f"phone '{{raw}}' reads as {row.e164} in {row_country} (the row's country) but as "
                f"{home.e164} in {self.country} (the import's phone country): write it with its "
                "country code or choose the import's phone country"
            )
        if row.e164:
            return (
                row
                if _nanp(row_country)
                else self._unless_written_like_nanp(raw, row, row_country, "the row's country")
            )
        if home.e164:
            if self._nanp_here:
                return home
            return self._unless_written_like_nanp(raw, home, self.country, "the import's phone country")
        return PhoneResult(
            problem=f"phone '{{raw}}' is not a valid number for {self.country} (the import's phone country) "
            f"nor for {row_country} (the row's country)"
        )

    def _unless_written_like_nanp(
        self, raw: str, reading: PhoneResult, country: str, whose: str
    ) -> PhoneResult:
        """The reading outside North America, refused when the number is written the North American way."""
        if not written_like_nanp(raw):
            return reading
        american = self._in("US")(raw).e164
        other = f" ({american})" if american else ""
        return PhoneResult(
            problem=f"phone '{{raw}}' is written like a North American number{other} but reads as "
            f"{reading.e164} in {country} ({whose}): write it with its country code or choose the "
            "import's phone country"
        )
