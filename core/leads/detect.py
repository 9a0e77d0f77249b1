"""Content detection: what a column's sampled values are (emails, phones, web addresses, countries,
honorifics, payment cards, identity numbers), as shares of its non-empty values.

The mapping suggestion reads a sample once per file (never per row), so this stays out of the
import's hot path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers

from core.leads.normalise import normalise_email, normalise_website
from core.leads.phones import PhoneNormaliser
from core.leads.places import normalise_country
from core.leads.vocabulary import HONORIFICS, US_STATE_CODES, fold

SAMPLE_VALUES = 200  # non-empty values read per column
SAMPLE_ROWS = 5_000  # rows looked through for them
MOSTLY = 0.8  # the share of values that makes a column "mostly" something
MAX_HONORIFIC_CHARS = 12  # 'Mademoiselle'; longer values are not folded to be compared

# What a column can be found to hold, with the words its evidence uses.
CONTENT_WORDS: dict[str, str] = {
    "email": "valid emails",
    "phone": "valid phone numbers",
    "website": "web addresses",
    "country": "country names",
    "country_code": "ISO country codes",
    "honorific": "honorifics such as Mr. or Ms.",
    "card": "payment card numbers (Luhn-valid)",
    "national_id": "social security or identity numbers",
}

_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/\u00a0]{6,24}(?:\s*(?:x|ext\.?|#)\s*\d{1,7})?$", re.IGNORECASE)
_CARD_LIKE = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_NATIONAL_ID = re.compile(
    r"^(?:(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}"  # US social security number
    r"|\d{3}\.\d{3}\.\d{3}-\d{2})$"  # Brazilian CPF
)
_SCHEME_OR_WWW = re.compile(r"^(?:https?://|www\.)", re.IGNORECASE)
_COMMON_TLDS = frozenset(
    "com org net edu gov info biz io co app dev ai me tv eu uk shop online site tech store".split()
)
_SOCIAL_HOSTS = ("linkedin.com", "twitter.com", "x.com", "facebook.com", "instagram.com", "xing.com")


@dataclass(frozen=True)
class ContentShare:
    """The share of a column's sampled values that are `what` (a CONTENT_WORDS key)."""

    what: str
    share: float

    @property
    def evidence(self) -> str:
        return f"{round(self.share * 100)}% of values are {CONTENT_WORDS[self.what]}"


def sample_values(frame: Any, headers: Sequence[str]) -> dict[str, list[str]]:
    """The first SAMPLE_VALUES non-empty values of each column, from the first SAMPLE_ROWS rows."""
    samples: dict[str, list[str]] = {}
    for header in headers:
        column = frame[header]
        values: list[str] = []
        # A slice at a time: most columns fill their sample in the first rows.
        for start in range(0, min(len(column), SAMPLE_ROWS), SAMPLE_VALUES):
            cells = column.iloc[start : start + SAMPLE_VALUES].tolist()
            values.extend(v.strip() for v in cells if v and v.strip())
            if len(values) >= SAMPLE_VALUES:
                break
        samples[header] = values[:SAMPLE_VALUES]
    return samples


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card(value: str) -> bool:
    if not _CARD_LIKE.match(value):
        return False
    return luhn_valid(value.replace(" ", "").replace("-", ""))


def _is_website(value: str) -> bool:
    if "@" in value or " " in value:
        return False
    domain = normalise_website(value)
    if domain is None or domain.endswith(_SOCIAL_HOSTS):
        return False  # a LinkedIn profile is not the lead's website
    tld = domain.rsplit(".", 1)[-1]
    return bool(_SCHEME_OR_WWW.match(value)) or tld in _COMMON_TLDS or tld.upper() in _CC_TLDS


_CC_TLDS = frozenset(phonenumbers.SUPPORTED_REGIONS)


class ContentReader:
    """Reads the sampled values of columns; phones are read in the tenant's country."""

    def __init__(self, default_country: str) -> None:
        self.phones = PhoneNormaliser(default_country)

    def _is_phone(self, value: str) -> bool:
        """Valid in the tenant's country, or international written without its '+' ('5511...')."""
        if self.phones(value).e164 is not None:
            return True
        digits = "".join(c for c in value if c.isdigit())
        return not value.startswith("+") and len(digits) >= 11 and self.phones("+" + digits).e164 is not None

    def shares(self, values: Sequence[str]) -> list[ContentShare]:
        """The kinds of content found in the values, most common first ([] for no values)."""
        if not values:
            return []
        counts = dict.fromkeys(CONTENT_WORDS, 0)
        state_codes = 0
        for value in values:
            if "@" in value:
                counts["email"] += normalise_email(value)[0] is not None
                continue
            if _CARD_LIKE.match(value) and _is_card(value):
                counts["card"] += 1
            if _NATIONAL_ID.match(value):
                counts["national_id"] += 1
            if _PHONE_LIKE.match(value) and sum(c.isdigit() for c in value) >= 7:
                counts["phone"] += self._is_phone(value)
            if len(value) <= MAX_HONORIFIC_CHARS and fold(value) in HONORIFICS:
                counts["honorific"] += 1
            if len(value) == 2 and value.isalpha():
                code = value.upper()
                if code in US_STATE_CODES and not normalise_country(code):
                    state_codes += 1
                counts["country_code"] += normalise_country(code) is not None
            elif normalise_country(value) is not None and not value.isdigit():
                counts["country"] += 1
            elif _is_website(value):
                counts["website"] += 1
        total = len(values)
        if state_codes > total * (1 - MOSTLY):
            counts["country_code"] = 0  # US state codes, many of which are also country codes
        found = [ContentShare(what, count / total) for what, count in counts.items() if count]
        return sorted(found, key=lambda s: -s.share)

    def mostly(self, values: Sequence[str]) -> ContentShare | None:
        """What most of the values are, when at least MOSTLY of them are one thing."""
        shares = self.shares(values)
        return shares[0] if shares and shares[0].share >= MOSTLY else None
