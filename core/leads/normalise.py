"""Normalising lead fields: phones to E.164, emails, names, websites, countries and time zones.

Parsing phone numbers is the hot spot of an import, so `PhoneNormaliser` caches by the raw text
and by the number with its formatting stripped ("(415) 555-0100" and "415.555.0100" are parsed
once), checks validity for the tenant's country first (cheap) before the general check, and
reads the time zone from the prefix table directly. Emails in the common plain shapes (ASCII, or
letters beyond ASCII before a plain ASCII domain) are checked by rules that accept a strict
subset of what email-validator accepts; anything else goes through email-validator (never with
DNS look-ups).

Every value is bounded: a phone or email far longer than any real one is refused at once (with
the value shortened in the message), notes and custom field values are cut to the import's caps
with a warning for the row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from importlib import resources
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata, PhoneNumberDesc
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from core.config import Settings
from core.leads.headers import channel_columns
from core.leads.vocabulary import CHANNEL_FIELDS, CUSTOM, LEAD_FIELDS, SALUTATION

# Longer than this a phone or an email is not one (phonenumbers refuses more than 250 characters,
# an email address is at most 254); refusing early also keeps the parsers' regular expressions
# away from megabyte-long text.
MAX_PHONE_CHARS = 250
MAX_EMAIL_CHARS = 254
SHOWN_CHARS = 40  # how much of a bad value a message quotes
ELLIPSIS = "…"


def shown(value: str) -> str:
    """A value as a message quotes it: cut after SHOWN_CHARS characters."""
    return value if len(value) <= SHOWN_CHARS else value[: SHOWN_CHARS - 1] + ELLIPSIS


def cut(value: str, limit: int) -> str:
    """At most `limit` characters, the last an ellipsis when something was cut."""
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + ELLIPSIS


@dataclass(frozen=True)
class FieldLimits:
    """How long a lead's free-text values may be when imported."""

    note_chars: int = 2_000
    custom_field_chars: int = 1_000

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldLimits:
        return cls(
            note_chars=settings.import_max_note_chars,
            custom_field_chars=settings.import_max_custom_field_chars,
        )


# --- phones -------------------------------------------------------------------------------

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


# --- emails -------------------------------------------------------------------------------

_PLAIN_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_SPECIAL_SUFFIXES = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)


def _is_plain_email(email: str) -> bool:
    """A plain ASCII address that email-validator accepts unchanged (but for case)."""
    if len(email) > 254 or not email.isascii() or not _PLAIN_EMAIL.match(email):
        return False
    local, _, domain = email.rpartition("@")
    # email-validator refuses 'xx--' labels that are not valid punycode: leave those to it.
    return len(local) <= 64 and "--" not in domain and not domain.endswith(_SPECIAL_SUFFIXES)


_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-")


def _is_plain_international_email(email: str) -> bool:
    """An address with letters beyond ASCII before the @ ('josé@example.com') and a plain ASCII
    domain, which email-validator accepts unchanged (but for case).

    Every character of the local part is ASCII atext or a non-ASCII letter or digit (what
    email-validator's internationalised dot-atom and its unsafe-character check allow, narrowed),
    already in NFC (email-validator's normal form), with no empty dot-separated part; the domain
    passes the same check as a plain address's. Anything else goes to email-validator.
    """
    local, at, domain = email.rpartition("@")
    if not at or not local or len(local) > 64 or len(email.encode("utf-8")) > 254:
        return False
    if not _is_plain_email("x@" + domain.lower()):
        return False
    for part in local.split("."):
        if not part:
            return False
        for char in part:
            if char not in _ATEXT and (char.isascii() or unicodedata.category(char)[0] not in ("L", "N")):
                return False
    return unicodedata.is_normalized("NFC", local)


def normalise_email(raw: str) -> tuple[str | None, str | None]:
    """(normalised lower-case email, None), (None, problem) or (None, None) when empty."""
    text = raw.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not text:
        return None, None
    if len(text) > MAX_EMAIL_CHARS:
        return None, (f"email '{shown(text)}' is too long to be an email address ({len(text):,} characters)")
    lowered = text.lower()
    if _is_plain_email(lowered):
        return lowered, None
    if not text.isascii() and _is_plain_international_email(text):
        return lowered, None
    try:
        normalised = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return None, f"email '{shown(raw.strip())}' is not valid: {exc}"
    # Mailboxes are case-insensitive in practice; one case makes dedup reliable.
    return normalised.lower(), None


# --- names and websites -------------------------------------------------------------------

_WORD_START = re.compile(r"(^|[\s\-'\u2019.])(\w)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_LABEL_CHAR = r"[a-z0-9\u00a1-\uffff]"
_DOMAIN = re.compile(
    rf"^(?=.{{1,253}}$)(?:{_LABEL_CHAR}(?:[a-z0-9\u00a1-\uffff-]{{0,61}}{_LABEL_CHAR})?\.)+"
    r"[a-z\u00a1-\uffff]{2,63}$"
)


def normalise_name(raw: str) -> str | None:
    """Whitespace collapsed; re-cased only when the whole name is in one case ('JOHN o'BRIEN' stays)."""
    text = " ".join(raw.split())
    if not text:
        return None
    if text.isupper() or text.islower():
        text = _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), text.lower())
    return text


def split_full_name(raw: str) -> tuple[str | None, str | None]:
    """'Ada Lovelace' -> (Ada, Lovelace); 'Lovelace, Ada' -> (Ada, Lovelace); 'Ada' -> (Ada, None)."""
    text = " ".join(raw.split())
    if not text:
        return None, None
    if "," in text:
        last, _, first = text.partition(",")
        return normalise_name(first), normalise_name(last)
    first, _, last = text.rpartition(" ")
    if not first:
        return normalise_name(last), None
    return normalise_name(first), normalise_name(last)


def normalise_website(raw: str) -> str | None:
    """A website reduced to its bare domain: 'https://www.Example.com/about' -> 'example.com'."""
    text = raw.strip().lower()
    if not text:
        return None
    text = _SCHEME.sub("", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    text = text.removeprefix("www.")
    return text if _DOMAIN.match(text) else None


def normalise_tags(raw: str) -> list[str]:
    """'VIP, trade show;2026' -> ['vip', 'trade show', '2026']: lower-case, unique, in order."""
    tags: list[str] = []
    for part in re.split(r"[,;|]", raw):
        tag = " ".join(part.split()).lower()[:64]
        if tag and tag not in tags:
            tags.append(tag)
    return tags


# --- countries and time zones -------------------------------------------------------------

_COUNTRY_ALIASES = {
    "usa": "US",
    "unitedstatesofamerica": "US",
    "america": "US",
    "uk": "GB",
    "unitedkingdom": "GB",
    "greatbritain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northernireland": "GB",
    "deutschland": "DE",
    "holland": "NL",
    "thenetherlands": "NL",
    "southkorea": "KR",
    "korea": "KR",
    "russianfederation": "RU",
    "uae": "AE",
    "czechrepublic": "CZ",
    "espana": "ES",
    "españa": "ES",
    "schweiz": "CH",
    "suisse": "CH",
    "österreich": "AT",
    "osterreich": "AT",
    "italia": "IT",
    "brasil": "BR",
    "méxico": "MX",
    "gbr": "GB",
    "deu": "DE",
    "fra": "FR",
    "can": "CA",
    "aus": "AU",
    "ind": "IN",
    "irl": "IE",
    "esp": "ES",
    "ita": "IT",
    "nld": "NL",
    "bra": "BR",
    "mex": "MX",
    "jpn": "JP",
    "chn": "CN",
    "nzl": "NZ",
    "zaf": "ZA",
    "che": "CH",
    "aut": "AT",
    "bel": "BE",
    "swe": "SE",
    "nor": "NO",
    "dnk": "DK",
    "fin": "FI",
    "pol": "PL",
    "prt": "PT",
    "sgp": "SG",
}
# Large cities in countries with several time zones, which the tz database names no zone after.
_CITY_ZONES = {
    "sanfrancisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "sandiego": "America/Los_Angeles",
    "sanjose": "America/Los_Angeles",
    "portland": "America/Los_Angeles",
    "lasvegas": "America/Los_Angeles",
    "oakland": "America/Los_Angeles",
    "sacramento": "America/Los_Angeles",
    "boston": "America/New_York",
    "washington": "America/New_York",
    "washingtondc": "America/New_York",
    "philadelphia": "America/New_York",
    "atlanta": "America/New_York",
    "miami": "America/New_York",
    "pittsburgh": "America/New_York",
    "baltimore": "America/New_York",
    "charlotte": "America/New_York",
    "brooklyn": "America/New_York",
    "orlando": "America/New_York",
    "raleigh": "America/New_York",
    "columbus": "America/New_York",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "austin": "America/Chicago",
    "sanantonio": "America/Chicago",
    "minneapolis": "America/Chicago",
    "stlouis": "America/Chicago",
    "kansascity": "America/Chicago",
    "nashville": "America/Chicago",
    "neworleans": "America/Chicago",
    "milwaukee": "America/Chicago",
    "saltlakecity": "America/Denver",
    "albuquerque": "America/Denver",
    "toronto": "America/Toronto",
    "ottawa": "America/Toronto",
    "montreal": "America/Toronto",
    "calgary": "America/Edmonton",
    "quebec": "America/Toronto",
    "sydney": "Australia/Sydney",
    "canberra": "Australia/Sydney",
    "melbourne": "Australia/Melbourne",
    "riodejaneiro": "America/Sao_Paulo",
    "brasilia": "America/Sao_Paulo",
    "guadalajara": "America/Mexico_City",
    "monterrey": "America/Monterrey",
    "moscow": "Europe/Moscow",
    "saintpetersburg": "Europe/Moscow",
    "stpetersburg": "Europe/Moscow",
}
_NOT_LETTERS = re.compile(r"[\s\-_.,'()]+")


def _place_key(text: str) -> str:
    return _NOT_LETTERS.sub("", text.lower())


@dataclass(frozen=True)
class _Geography:
    country_by_name: dict[str, str]
    zones_by_country: dict[str, list[str]]
    zone_by_city: dict[str, str]
    country_by_zone: dict[str, str]
    zones: dict[str, str] = field(default_factory=dict)  # lower-case IANA name -> IANA name


@cache
def _geography() -> _Geography:
    base = resources.files("tzdata").joinpath("zoneinfo")
    country_by_name: dict[str, str] = {}
    for line in base.joinpath("iso3166.tab").read_text("utf-8").splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        code, name = line.split("\t", 1)
        country_by_name[_place_key(code)] = code
        country_by_name[_place_key(name)] = code
        country_by_name[_place_key(re.sub(r"\(.*?\)", "", name))] = code
    country_by_name.update(_COUNTRY_ALIASES)
    zones_by_country: dict[str, list[str]] = {}
    zone_by_city: dict[str, str] = {}
    country_by_zone: dict[str, str] = {}
    for line in base.joinpath("zone.tab").read_text("utf-8").splitlines():
        if line.startswith("#"):
            continue
        code, _coordinates, zone = line.split("\t")[:3]
        zones_by_country.setdefault(code, []).append(zone)
        country_by_zone[zone] = code
        zone_by_city.setdefault(_place_key(zone.rsplit("/", 1)[-1]), zone)
    zone_by_city.update(_CITY_ZONES)
    for zone in _CITY_ZONES.values():
        country_by_zone.setdefault(zone, "")
    zones = {z.lower(): z for z in available_timezones()}
    return _Geography(country_by_name, zones_by_country, zone_by_city, country_by_zone, zones)


@cache
def phone_countries() -> dict[str, str]:
    """ISO code -> English name of every country whose phone numbers can be read, by name."""
    base = resources.files("tzdata").joinpath("zoneinfo")
    names = {}
    for line in base.joinpath("iso3166.tab").read_text("utf-8").splitlines():
        if not line.startswith("#") and "\t" in line:
            code, name = line.split("\t", 1)
            if code in phonenumbers.SUPPORTED_REGIONS:
                names[code] = name.strip()
    names["GB"] = "United Kingdom"  # tzdata's "Britain (UK)" is not what people look for
    return dict(sorted(names.items(), key=lambda item: item[1]))


@lru_cache(maxsize=4096)
def normalise_country(raw: str) -> str | None:
    """An ISO 3166 alpha-2 code from a code or an English (or common local) country name."""
    key = _place_key(raw)
    return _geography().country_by_name.get(key) if key else None


@lru_cache(maxsize=4096)
def normalise_time_zone(raw: str) -> str | None:
    """An IANA time zone name ('europe/berlin' -> 'Europe/Berlin'), or None."""
    return _geography().zones.get(raw.strip().lower()) if raw.strip() else None


@lru_cache(maxsize=4096)
def time_zone_for_place(country: str | None, city: str | None) -> str | None:
    """The time zone of a city (within its country when known), else of a one-zone country."""
    geography = _geography()
    if city:
        zone = geography.zone_by_city.get(_place_key(city))
        zone_country = geography.country_by_zone.get(zone or "")
        if zone and (country is None or not zone_country or zone_country == country):
            return zone
    if country:
        zones = geography.zones_by_country.get(country, [])
        if len(zones) == 1:
            return zones[0]
    return None


# --- one row ------------------------------------------------------------------------------

TEXT_LIMITS = {
    "company": 200,
    "title": 200,
    "industry": 120,
    "city": 120,
    "first_name": 120,
    "last_name": 120,
}


def clip(value: str | None, field_name: str) -> str | None:
    """Trimmed text, cut to the column's length; None when empty."""
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        return None
    limit = TEXT_LIMITS.get(field_name)
    return text[:limit] if limit else text


# Lead columns an import writes, in the order of `RowOutcome.values`.
LEAD_COLUMNS = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "title",
    "website",
    "industry",
    "city",
    "country",
    "time_zone",
    "notes",
    "custom_fields",
    "alternates",
)


@dataclass(slots=True)
class RowOutcome:
    """One spreadsheet row after normalisation: the lead's values, or the reasons it is refused."""

    row: int
    values: tuple[Any, ...]  # in LEAD_COLUMNS order; custom_fields is None when empty
    tags: list[str]
    problems: list[str]
    warnings: list[str]

    @property
    def accepted(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(LEAD_COLUMNS, self.values, strict=True))


class LeadNormaliser:
    """Turns the cells of a mapped spreadsheet into lead values, a column at a time, with caches."""

    def __init__(
        self, default_country: str, mapping: dict[str, str], limits: FieldLimits | None = None
    ) -> None:
        self.default_country = default_country.upper()
        self.mapping = mapping
        self.limits = limits or FieldLimits()
        self.phones = PhoneReader(self.default_country)
        self.fields = {
            target: header
            for header, target in mapping.items()
            if target in LEAD_FIELDS and target not in CHANNEL_FIELDS
        }
        self.phone_headers = channel_columns(mapping, "phone")
        self.email_headers = channel_columns(mapping, "email")
        # (custom field name, header): a salutation column is kept as the custom field `salutation`.
        self.custom_headers = [
            (SALUTATION if target == SALUTATION else h, h)
            for h, target in mapping.items()
            if target in (CUSTOM, SALUTATION)
        ]

    def rows(self, frame: Any, row_numbers: Sequence[int]) -> list[RowOutcome]:
        """One outcome per non-blank row of the frame (all-empty rows are skipped)."""
        count = len(frame)
        blank = [""] * count

        def cells(name: str) -> list[str]:
            header = self.fields.get(name)
            return frame[header].tolist() if header is not None else blank

        raw_country = cells("country")
        countries = [normalise_country(v) if v else None for v in raw_country]
        raw_phones = [frame[h].tolist() for h in self.phone_headers]
        raw_emails = [frame[h].tolist() for h in self.email_headers]
        read_phone = self.phones
        if "country" in self.fields:
            phone_columns = [
                [read_phone(v, c) if v else EMPTY_PHONE for v, c in zip(raw, countries, strict=True)]
                for raw in raw_phones
            ]
        else:
            phone_columns = [[read_phone(v) if v else EMPTY_PHONE for v in raw] for raw in raw_phones]
        email_columns = [[normalise_email(v) if v else (None, None) for v in raw] for raw in raw_emails]
        raw_zone, raw_website = cells("time_zone"), cells("website")
        firsts = [normalise_name(v) if v else None for v in cells("first_name")]
        lasts = [normalise_name(v) if v else None for v in cells("last_name")]
        full_names = cells("full_name")
        texts = {
            name: [clip(v, name) if v else None for v in cells(name)]
            for name in ("company", "title", "industry", "city")
        }
        notes = [v.strip() or None for v in cells("notes")]
        note_cap, custom_cap = self.limits.note_chars, self.limits.custom_field_chars
        zones = [normalise_time_zone(v) if v else None for v in raw_zone]
        websites = [normalise_website(v) if v else None for v in raw_website]
        tags = [normalise_tags(v) if v else [] for v in cells("tags")]
        custom = [(name, frame[header].tolist()) for name, header in self.custom_headers]
        non_blank = frame.ne("").any(axis=1).tolist() if len(frame.columns) else []
        outcomes: list[RowOutcome] = []
        for i, row in enumerate(row_numbers):
            if not non_blank[i]:
                continue
            problems: list[str] = []
            warnings: list[str] = []
            phone, email, alternates, unusable = self._channels(i, phone_columns, email_columns, raw_phones)
            if phone.e164 is None and email is None:
                problems = unusable or ["no phone or email: a lead needs at least one"]
            else:
                # A lead with one usable channel is kept; what could not be read is left out.
                warnings.extend(f"{message}; left out" for message in unusable)
            first, last = firsts[i], lasts[i]
            if full_names[i] and not (first and last):
                split_first, split_last = split_full_name(full_names[i])
                first, last = first or split_first, last or split_last
            country = countries[i]
            if country is None and raw_country[i].strip():
                warnings.append(f"country '{shown(raw_country[i].strip())}' is not recognised; left empty")
            country = country or phone.region
            city = texts["city"][i]
            zone = zones[i]
            if zone is None and raw_zone[i].strip():
                warnings.append(
                    f"time zone '{shown(raw_zone[i].strip())}' is not an IANA name such as "
                    "Europe/Berlin; taken from the phone or place instead"
                )
            if zone is None:
                zone = phone.time_zone or (time_zone_for_place(country, city) if country or city else None)
            website = websites[i]
            if website is None and raw_website[i].strip():
                warnings.append(f"website '{shown(raw_website[i].strip())}' is not a domain; left empty")
            note = notes[i]
            if note is not None and len(note) > note_cap:
                warnings.append(f"notes cut to {note_cap:,} characters (they had {len(note):,})")
                note = cut(note, note_cap)
            # None rather than an empty dict per row: half a million of those add up.
            extra = {h: v[i].strip() for h, v in custom if v[i].strip()} or None
            if extra is not None:
                for header, value in extra.items():
                    if len(value) > custom_cap:
                        warnings.append(
                            f"custom field '{shown(header)}' cut to {custom_cap:,} "
                            f"characters (it had {len(value):,})"
                        )
                        extra[header] = cut(value, custom_cap)
            values = (
                clip(first, "first_name"),
                clip(last, "last_name"),
                phone.e164,
                email,
                texts["company"][i],
                texts["title"][i],
                website,
                texts["industry"][i],
                city,
                country,
                zone,
                note,
                extra,
                alternates,
            )
            outcomes.append(RowOutcome(row, values, tags[i], problems, warnings))
        return outcomes

    def _channels(
        self,
        i: int,
        phone_columns: list[list[PhoneResult]],
        email_columns: list[list[tuple[str | None, str | None]]],
        raw_phones: list[list[str]],
    ) -> tuple[PhoneResult, str | None, list[dict[str, str]] | None, list[str]]:
        """Row i's best phone and email, the other usable ones (best first) and what was unusable."""
        phone = EMPTY_PHONE
        email: str | None = None
        alternates: list[dict[str, str]] = []
        unusable: list[str] = []
        several_phones, several_emails = len(phone_columns) > 1, len(email_columns) > 1
        for column, results in enumerate(phone_columns):
            result = results[i]
            header = self.phone_headers[column]
            if result.e164 is None:
                if result.problem:
                    message = result.problem.format(raw=shown(raw_phones[column][i].strip()))
                    unusable.append(f"column '{shown(header)}': {message}" if several_phones else message)
            elif phone.e164 is None:
                phone = result
            elif result.e164 != phone.e164 and all(a["value"] != result.e164 for a in alternates):
                alternates.append({"channel": "sms", "value": result.e164, "label": header})
        for column, addresses in enumerate(email_columns):
            found, problem = addresses[i]
            header = self.email_headers[column]
            if found is None:
                if problem:
                    unusable.append(f"column '{shown(header)}': {problem}" if several_emails else problem)
            elif email is None:
                email = found
            elif found != email and all(a["value"] != found for a in alternates):
                alternates.append({"channel": "email", "value": found, "label": header})
        return phone, email, alternates or None, unusable
