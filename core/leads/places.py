"""Countries and time zones from what a spreadsheet says: a country code or name, an IANA zone,
or a city; and the countries whose phone numbers can be read, by name."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from zoneinfo import available_timezones

import phonenumbers

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
