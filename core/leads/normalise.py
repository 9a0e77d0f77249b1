"""Normalising lead fields: phones to E.164, emails, names, websites, countries and time zones.

Parsing phone numbers is the hot spot of an import, so `PhoneNormaliser` caches by the raw text
and by the number with its formatting stripped ("(415) 555-0100" and "415.555.0100" are parsed
once), checks validity for the tenant's country first (cheap) before the general check, and
reads the time zone from the prefix table directly. Emails in the common plain-ASCII shape are
checked by a pattern that accepts a strict subset of what email-validator accepts; anything else
goes through email-validator (never with DNS look-ups).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import timezone as phone_timezones

from core.leads.mapping import CUSTOM, LEAD_FIELDS

# --- phones -------------------------------------------------------------------------------

_EXTENSION = re.compile(r"\s*(?:,|;|ext\.?|extension|ext|x|#)\s*\d{1,7}\s*$", re.IGNORECASE)
_FORMATTING = re.compile(r"[\s().\-/\u00a0\u2010-\u2015\u2212]")
_DIGITS = re.compile(r"^\+?\d+$")
_SCIENTIFIC = re.compile(r"^\+?\d(?:[.,]\d+)?[eE]\+?\d{1,2}$")
_WHOLE_FLOAT = re.compile(r"^(\+?\d+)\.0+$")
_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class PhoneResult:
    """A parsed phone: E.164, its region and time zone, or a problem (with `{raw}` to fill in)."""

    e164: str | None = None
    region: str | None = None
    time_zone: str | None = None
    problem: str | None = None

    def error(self, raw: str) -> str | None:
        return None if self.problem is None else self.problem.format(raw=raw)


EMPTY_PHONE = PhoneResult()


class PhoneNormaliser:
    """Phones to E.164 for one default country, cached by raw and by stripped text."""

    def __init__(self, default_country: str) -> None:
        self.region = default_country.upper()
        self._by_raw: dict[str, PhoneResult] = {}
        self._by_key: dict[str, PhoneResult] = {}

    def __call__(self, raw: str) -> PhoneResult:
        found = self._by_raw.get(raw)
        if found is None:
            found = self._by_raw[raw] = self._normalise(raw)
        return found

    def _normalise(self, raw: str) -> PhoneResult:
        text = raw.strip().lstrip("'\u2019").strip()
        if text.lower().startswith("tel:"):
            text = text[4:].strip()
        if not text:
            return EMPTY_PHONE
        if _SCIENTIFIC.match(text):
            return self._from_scientific(text)
        whole = _WHOLE_FLOAT.match(text)
        if whole:
            text = whole.group(1)
        text = _EXTENSION.sub("", text)
        key = _FORMATTING.sub("", text)
        if _DIGITS.match(key):
            if key.startswith("00"):
                key = "+" + key[2:]  # the international prefix used outside North America
        else:
            key = text  # letters (vanity numbers) or junk: let phonenumbers judge
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._parse(key)
        return found

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
        try:
            number = phonenumbers.parse(key, self.region)
        except phonenumbers.NumberParseException:
            return PhoneResult(problem="phone '{raw}' is not a phone number")
        if phonenumbers.is_valid_number_for_region(number, self.region):
            region: str | None = self.region
        elif phonenumbers.is_valid_number(number):
            region = phonenumbers.region_code_for_number(number)
        else:
            if international:
                return PhoneResult(problem="phone '{raw}' is not a valid phone number")
            return PhoneResult(problem="phone '{raw}' is not a valid number for " + self.region)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        zones = phone_timezones.time_zones_for_geographical_number(number)
        time_zone = zones[0] if len(zones) == 1 and zones[0] != _UNKNOWN_ZONE else None
        return PhoneResult(
            e164=e164, region=None if region == "001" else region, time_zone=time_zone
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


@cache
def normalise_email(raw: str) -> tuple[str | None, str | None]:
    """(normalised lower-case email, None), (None, problem) or (None, None) when empty."""
    text = raw.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    if not text:
        return None, None
    lowered = text.lower()
    if _is_plain_email(lowered):
        return lowered, None
    try:
        normalised = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return None, f"email '{raw.strip()}' is not valid: {exc}"
    # Mailboxes are case-insensitive in practice; one case makes dedup reliable.
    return normalised.lower(), None


# --- names and websites -------------------------------------------------------------------

_WORD_START = re.compile(r"(^|[\s\-'\u2019.])(\w)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?\.)+[a-z\u00a1-\uffff]{2,63}$")


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
    "usa": "US", "unitedstatesofamerica": "US", "america": "US", "uk": "GB", "unitedkingdom": "GB",
    "greatbritain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northernireland": "GB", "deutschland": "DE", "holland": "NL", "thenetherlands": "NL",
    "southkorea": "KR", "korea": "KR", "russianfederation": "RU", "uae": "AE",
    "czechrepublic": "CZ", "espana": "ES", "españa": "ES", "schweiz": "CH", "suisse": "CH",
    "österreich": "AT", "osterreich": "AT", "italia": "IT", "brasil": "BR", "méxico": "MX",
    "gbr": "GB", "deu": "DE", "fra": "FR", "can": "CA", "aus": "AU", "ind": "IN", "irl": "IE",
    "esp": "ES", "ita": "IT", "nld": "NL", "bra": "BR", "mex": "MX", "jpn": "JP", "chn": "CN",
    "nzl": "NZ", "zaf": "ZA", "che": "CH", "aut": "AT", "bel": "BE", "swe": "SE", "nor": "NO",
    "dnk": "DK", "fin": "FI", "pol": "PL", "prt": "PT", "sgp": "SG",
}
# Large cities in countries with several time zones, which the tz database names no zone after.
_CITY_ZONES = {
    "sanfrancisco": "America/Los_Angeles", "seattle": "America/Los_Angeles",
    "sandiego": "America/Los_Angeles", "sanjose": "America/Los_Angeles",
    "portland": "America/Los_Angeles", "lasvegas": "America/Los_Angeles",
    "oakland": "America/Los_Angeles", "sacramento": "America/Los_Angeles",
    "boston": "America/New_York", "washington": "America/New_York",
    "washingtondc": "America/New_York", "philadelphia": "America/New_York",
    "atlanta": "America/New_York", "miami": "America/New_York", "pittsburgh": "America/New_York",
    "baltimore": "America/New_York", "charlotte": "America/New_York", "brooklyn": "America/New_York",
    "orlando": "America/New_York", "raleigh": "America/New_York", "columbus": "America/New_York",
    "dallas": "America/Chicago", "houston": "America/Chicago", "austin": "America/Chicago",
    "sanantonio": "America/Chicago", "minneapolis": "America/Chicago",
    "stlouis": "America/Chicago", "kansascity": "America/Chicago", "nashville": "America/Chicago",
    "neworleans": "America/Chicago", "milwaukee": "America/Chicago",
    "saltlakecity": "America/Denver", "albuquerque": "America/Denver",
    "toronto": "America/Toronto", "ottawa": "America/Toronto", "montreal": "America/Toronto",
    "calgary": "America/Edmonton", "quebec": "America/Toronto",
    "sydney": "Australia/Sydney", "canberra": "Australia/Sydney", "melbourne": "Australia/Melbourne",
    "riodejaneiro": "America/Sao_Paulo", "brasilia": "America/Sao_Paulo",
    "guadalajara": "America/Mexico_City", "monterrey": "America/Monterrey",
    "moscow": "Europe/Moscow", "saintpetersburg": "Europe/Moscow", "stpetersburg": "Europe/Moscow",
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
def normalise_country(raw: str) -> str | None:
    """An ISO 3166 alpha-2 code from a code or an English (or common local) country name."""
    key = _place_key(raw)
    return _geography().country_by_name.get(key) if key else None


@cache
def normalise_time_zone(raw: str) -> str | None:
    """An IANA time zone name ('europe/berlin' -> 'Europe/Berlin'), or None."""
    return _geography().zones.get(raw.strip().lower()) if raw.strip() else None


@cache
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

TEXT_LIMITS = {"company": 200, "title": 200, "industry": 120, "city": 120, "first_name": 120,
               "last_name": 120}


def clip(value: str | None, field_name: str) -> str | None:
    """Trimmed text, cut to the column's length; None when empty."""
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        return None
    limit = TEXT_LIMITS.get(field_name)
    return text[:limit] if limit else text


@dataclass
class RowOutcome:
    """One spreadsheet row after normalisation: the lead's values, or the reasons it is refused."""

    row: int
    values: dict[str, Any]
    tags: list[str]
    problems: list[str]
    warnings: list[str]

    @property
    def accepted(self) -> bool:
        return not self.problems


class LeadNormaliser:
    """Turns the cells of a mapped spreadsheet into lead values, row by row, with caches."""

    def __init__(self, default_country: str, mapping: dict[str, str]) -> None:
        self.default_country = default_country.upper()
        self.mapping = mapping
        self.phones = PhoneNormaliser(self.default_country)
        self._phones_by_country: dict[str, PhoneNormaliser] = {self.default_country: self.phones}
        self.fields = {target: header for header, target in mapping.items() if target in LEAD_FIELDS}
        self.custom_headers = [h for h, target in mapping.items() if target == CUSTOM]

    def _phones_for(self, country: str | None) -> PhoneNormaliser:
        if country is None or country not in phonenumbers.SUPPORTED_REGIONS:
            return self.phones
        found = self._phones_by_country.get(country)
        if found is None:
            found = self._phones_by_country[country] = PhoneNormaliser(country)
        return found

    def rows(self, frame: Any, row_numbers: Sequence[int]) -> list[RowOutcome]:
        """One outcome per non-blank row of the frame (all-empty rows are skipped)."""
        columns = {name: frame[header].tolist() for name, header in self.fields.items()}
        custom = [(header, frame[header].tolist()) for header in self.custom_headers]
        non_blank = frame.ne("").any(axis=1).tolist() if len(frame.columns) else []
        empty = [""] * len(frame)
        get = {name: columns.get(name, empty) for name in LEAD_FIELDS}
        outcomes: list[RowOutcome] = []
        for index, row in enumerate(row_numbers):
            if not non_blank[index]:
                continue
            cells = {name: values[index] for name, values in get.items()}
            extra = {h: v[index].strip() for h, v in custom if v[index].strip()}
            outcomes.append(self.row(row, cells, extra))
        return outcomes

    def row(self, row: int, cells: dict[str, str], custom: dict[str, str]) -> RowOutcome:
        problems: list[str] = []
        warnings: list[str] = []
        country = None
        if cells["country"].strip():
            country = normalise_country(cells["country"])
            if country is None:
                warnings.append(f"country '{cells['country'].strip()}' is not recognised; left empty")
        # A number in national format is read in the row's own country when it names one.
        phone = self._phones_for(country)(cells["phone"]) if cells["phone"] else EMPTY_PHONE
        if phone.problem:
            problems.append(phone.error(cells["phone"].strip()) or "")
        email, email_problem = normalise_email(cells["email"]) if cells["email"] else (None, None)
        if email_problem:
            problems.append(email_problem)
        if not problems and phone.e164 is None and email is None:
            problems.append("no phone or email: a lead needs at least one")
        first = normalise_name(cells["first_name"])
        last = normalise_name(cells["last_name"])
        if cells["full_name"] and not (first and last):
            split_first, split_last = split_full_name(cells["full_name"])
            first, last = first or split_first, last or split_last
        country = country or phone.region
        city = clip(cells["city"], "city")
        time_zone = None
        if cells["time_zone"].strip():
            time_zone = normalise_time_zone(cells["time_zone"])
            if time_zone is None:
                warnings.append(f"time zone '{cells['time_zone'].strip()}' is not an IANA name "
                                "such as Europe/Berlin; taken from the phone or place instead")
        time_zone = time_zone or phone.time_zone or time_zone_for_place(country, city)
        website = normalise_website(cells["website"]) if cells["website"] else None
        if cells["website"].strip() and website is None:
            warnings.append(f"website '{cells['website'].strip()}' is not a domain; left empty")
        values = {
            "first_name": clip(first, "first_name"),
            "last_name": clip(last, "last_name"),
            "phone": phone.e164,
            "email": email,
            "company": clip(cells["company"], "company"),
            "title": clip(cells["title"], "title"),
            "website": website,
            "industry": clip(cells["industry"], "industry"),
            "city": city,
            "country": country,
            "time_zone": time_zone,
            "notes": cells["notes"].strip() or None,
            "custom_fields": custom,
        }
        tags = normalise_tags(cells["tags"]) if cells["tags"] else []
        return RowOutcome(row, values, tags, problems, warnings)
