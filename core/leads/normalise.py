"""Normalising lead fields, and a spreadsheet row into a lead's values (`LeadNormaliser`).

Phones are read by core/leads/phones.py, countries and time zones by core/leads/places.py; this
module does emails, names, websites and tags, and puts a row together. Emails in the common
plain shapes (ASCII, or letters beyond ASCII before a plain ASCII domain) are checked by rules
that accept a strict subset of what email-validator accepts; anything else goes through
email-validator (never with DNS look-ups).

Every value is bounded: a phone or email far longer than any real one is refused at once (with
the value shortened in the message), notes and custom field values are cut to the import's caps
with a warning for the row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from core.config import Settings
from core.leads.columns import IMPORTED_COLUMNS
from core.leads.headers import channel_columns
from core.leads.phones import EMPTY_PHONE, PhoneReader, PhoneResult
from core.leads.places import normalise_country, normalise_time_zone, time_zone_for_place
from core.leads.vocabulary import CHANNEL_FIELDS, CUSTOM, LEAD_FIELDS, SALUTATION
from core.text import cut, shown

# Longer than this an email is not one (an address is at most 254 characters); refusing early
# also keeps the parsers' regular expressions away from megabyte-long text.
MAX_EMAIL_CHARS = 254


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


@dataclass(slots=True)
class RowOutcome:
    """One spreadsheet row after normalisation: the lead's values, or the reasons it is refused."""

    row: int
    values: tuple[Any, ...]  # in IMPORTED_COLUMNS order; custom_fields is None when empty
    tags: list[str]
    problems: list[str]
    warnings: list[str]

    @property
    def accepted(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(IMPORTED_COLUMNS, self.values, strict=True))


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
