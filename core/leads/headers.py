"""What a spreadsheet header says: the lead field it names (in seven languages and the shapes CRMs
write), the kind of phone or email, sensitive data, or the type of a neighbouring column; and the
phone and email columns of a mapping, best first.

A mapping is header -> target, where a target is a lead field, `phone:<kind>` / `email:<kind>`
(several columns may map to one channel), `salutation`, `custom` or `ignore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from core.leads.vocabulary import (
    CHANNEL_FIELDS,
    CHANNEL_KINDS,
    CUSTOM,
    ENTITY_WORDS,
    KIND_RANK,
    KIND_SEPARATOR,
    KIND_WORDS,
    LEAD_FIELDS,
    NOT_A_PHONE,
    SENSITIVE_HEADERS,
    SYNONYMS,
    TYPE_WORDS,
    VALUE_WORDS,
    fold,
    words,
)

# The field names a header can give, looked up by its folded key.
_SYNONYM_TO_FIELD = {
    synonym: name
    for name, languages in SYNONYMS.items()
    for synonyms in languages.values()
    for synonym in synonyms
}
_SENSITIVE = {
    synonym: kind
    for kind, languages in SENSITIVE_HEADERS.items()
    for synonyms in languages.values()
    for synonym in synonyms
}
_KIND_BY_WORD = {word: kind for kind, kind_words in KIND_WORDS.items() for word in kind_words}


def header_key(header: str) -> str:
    """The form a header is compared in: 'E-mail Address ' -> 'emailaddress', 'Prénom' -> 'prenom'."""
    return fold(header)


@dataclass(frozen=True)
class HeaderMeaning:
    """What a header alone says about its column."""

    field: str | None = None  # a LEAD_FIELDS name or SALUTATION
    kind: str = ""  # for phones and emails: one of CHANNEL_KINDS, "" when the header names none
    sensitive: str | None = None  # a SENSITIVE_KINDS name
    type_of: str | None = None  # 'Phone 1 - Type': the link key of the column it describes
    link: str = ""  # the words with their numbers, to pair 'Phone 1 - Value' with 'Phone 1 - Type'

    @property
    def target(self) -> str:
        if self.field in CHANNEL_FIELDS and self.kind:
            return f"{self.field}{KIND_SEPARATOR}{self.kind}"
        return self.field or CUSTOM


def _field_of(tokens: list[str]) -> str | None:
    """The field the words name, trying them whole, without kind words, without an entity prefix."""
    plain = [t for t in tokens if not t.isdigit()]
    while len(plain) > 1 and plain[-1] in VALUE_WORDS:
        plain = plain[:-1]
    if not plain:
        return None
    candidates = [plain, [t for t in plain if t not in _KIND_BY_WORD]]
    if len(plain) > 1 and plain[0] in ENTITY_WORDS:
        rest = plain[1:]
        candidates += [rest, [t for t in rest if t not in _KIND_BY_WORD]]
    for candidate in candidates:
        field = _SYNONYM_TO_FIELD.get("".join(candidate)) if candidate else None
        if field is not None:
            return field
    return None


def _kind_of(channel: str, key: str) -> str:
    """The kind a phone or email header names: by its words, or inside one word ('Handynummer')."""
    for kind, kind_words in KIND_WORDS.items():
        if kind in CHANNEL_KINDS[channel] and any(word in key for word in kind_words):
            return kind
    return ""


@lru_cache(maxsize=4096)
def read_header(header: str) -> HeaderMeaning:
    """What a header says: its field (in any of the seven languages, in the shapes CRMs write),
    the kind of phone or email, whether it names sensitive data or the type of another column."""
    tokens = words(header)
    key = "".join(tokens)
    link = "".join(t for t in tokens if t not in VALUE_WORDS)
    plain = "".join(t for t in tokens if not t.isdigit())
    sensitive = _SENSITIVE.get(key) or _SENSITIVE.get(plain)
    if sensitive is not None:
        return HeaderMeaning(sensitive=sensitive, link=link)
    if len(tokens) > 1 and tokens[-1] in TYPE_WORDS and _field_of(tokens[:-1]) in CHANNEL_FIELDS:
        return HeaderMeaning(type_of="".join(tokens[:-1]), link=link)
    if any(t in NOT_A_PHONE for t in tokens):
        return HeaderMeaning(link=link)  # a fax or pager number: no one can be texted on it
    field = _field_of(tokens)
    if field is None and "/" in str(header):
        # 'Company / Account': every part names the same field.
        parts = {_field_of(words(part)) for part in str(header).split("/")}
        field = parts.pop() if len(parts) == 1 else None
    kind = _kind_of(field, plain) if field in CHANNEL_FIELDS else ""
    return HeaderMeaning(field=field, kind=kind, link=link)


def field_for_header(header: str) -> str | None:
    """The lead field a header names ('phone' for 'Mobile Phone'), None when it names none."""
    return read_header(str(header)).field


def looks_like_header_row(cells: Sequence[Any]) -> bool:
    """True when at least two cells name lead fields (how a header row is told from a title)."""
    return sum(1 for c in cells if field_for_header(str(c or ""))) >= 2


def split_target(target: str) -> tuple[str, str | None]:
    """A mapping target as (field, kind): 'phone:mobile' -> ('phone', 'mobile'), 'city' -> ('city', None)."""
    name, _, kind = target.partition(KIND_SEPARATOR)
    return name, kind or None


def channel_of(target: str) -> str | None:
    """'phone' for 'phone' and 'phone:mobile', 'email' for the email targets, else None."""
    channel = split_target(target)[0]
    return channel if channel in CHANNEL_FIELDS else None


@dataclass(frozen=True)
class ContactColumn:
    """One of a file's phone or email columns, as the rows half of the import reads them."""

    header: str
    channel: str  # "phone" or "email"
    kind: str  # one of CHANNEL_KINDS, or "" when the header names none
    rank: int  # 0 is the best column of its channel (a mobile for SMS, a work email for email)
    type_header: str | None = None  # a column whose cells say the kind row by row (Google's 'Type')


def contact_columns(mapping: dict[str, str]) -> dict[str, list[ContactColumn]]:
    """The phone and email columns of a mapping, best first per channel: by kind (KIND_RANK),
    then in the file's order. Several columns may map to one channel ('Mobile Phone' ->
    phone:mobile, 'Business Phone' -> phone:work); the best fills the lead, the rest its alternates."""
    types = {}
    for header in mapping:
        meaning = read_header(str(header))
        if meaning.type_of is not None:
            types[meaning.type_of] = header
    found: dict[str, list[tuple[int, int, str, str]]] = {channel: [] for channel in CHANNEL_FIELDS}
    for position, (header, target) in enumerate(mapping.items()):
        channel = channel_of(target)
        if channel is None:
            continue
        # A plain 'phone' target leaves the kind to the header's words ('Work' -> work).
        kind = split_target(target)[1] or _kind_of(channel, fold(header))
        found[channel].append((KIND_RANK[channel].index(kind), position, header, kind))
    columns: dict[str, list[ContactColumn]] = {}
    for channel, entries in found.items():
        columns[channel] = [
            ContactColumn(header, channel, kind, rank, types.get(read_header(str(header)).link))
            for rank, (_order, _position, header, kind) in enumerate(sorted(entries))
        ]
    return columns


def channel_columns(mapping: dict[str, str], channel: str) -> list[str]:
    """The headers mapped to phone (or email), best first."""
    return [column.header for column in contact_columns(mapping)[channel]]


def lead_field_columns(mapping: dict[str, str]) -> dict[str, str]:
    """lead field -> the header that fills it; phone and email from their best column."""
    fields = {target: header for header, target in mapping.items() if target in LEAD_FIELDS}
    for channel, columns in contact_columns(mapping).items():
        if columns:
            fields[channel] = columns[0].header
    return fields


