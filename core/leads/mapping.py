"""Column mapping: the suggestion for a file's columns, checks on a mapping, and mappings saved
per tenant.

The suggestion reads each header (core/leads/headers.py, words from core/leads/vocabulary.py) and,
where the header says nothing or calls honorifics a title, a sample of the column's values
(core/leads/detect.py); it gives every column a target, a confidence and its evidence, and leaves
sensitive columns out with the reason. A mapping file or the dashboard corrects it column by column.

Every step is linear in the number of columns (set and dict look-ups, never a column compared
with every other), and a lead keeps at most `max_custom_fields` custom fields: the suggestion
keeps the first ones and leaves the rest out, a mapping that keeps more is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import ValidationError
from core.leads.detect import MOSTLY, ContentReader, ContentShare
from core.leads.headers import (
    HeaderMeaning,
    channel_of,
    field_for_header,
    header_key,
    looks_like_header_row,
    read_header,
    split_target,
)
from core.leads.vocabulary import (
    CHANNEL_FIELDS,
    CHANNEL_KINDS,
    CHANNEL_TARGETS,
    CUSTOM,
    IGNORE,
    KIND_SEPARATOR,
    LEAD_FIELDS,
    SALUTATION,
    SENSITIVE_KINDS,
)
from core.models import ColumnMapping
from core.permissions import Actor, Permission

# Re-exported: the readers and the suppression import read headers through this module.
__all__ = [
    "CUSTOM",
    "IGNORE",
    "LEAD_FIELDS",
    "SALUTATION",
    "TARGET_LABELS",
    "field_for_header",
    "header_key",
    "looks_like_header_row",
    "split_target",
    "CHANNEL_FIELDS",
    "CHANNEL_KINDS",
    "CHANNEL_TARGETS",
    "KIND_SEPARATOR",
]

DEFAULT_MAX_CUSTOM_FIELDS = 50  # Settings.import_max_custom_fields
HEADER_CONFIDENCE = 0.9  # a header that names a field, before its values are looked at

TARGET_LABELS: dict[str, str] = {
    **LEAD_FIELDS,
    **CHANNEL_TARGETS,
    SALUTATION: "Salutation (Mr., Ms., Herr, Mme)",
    CUSTOM: "Keep as a custom field",
    IGNORE: "Do not import",
}
@dataclass(frozen=True)
class ColumnSuggestion:
    """What the suggestion does with one column, and why."""

    header: str
    target: str  # a TARGET_LABELS key
    confidence: float | None  # 0..1 for a field; None for a column kept or left out as it is
    evidence: str  # why, in words ('the header names phone; 95% of values are valid phone numbers')
    left_out: str | None = None  # why the column is not imported, when it is not
    sensitive: bool = False  # left out for what it holds (cards, passwords, identity numbers)
    capped: bool = False  # left out because the lead's custom fields are full


@dataclass(frozen=True)
class MappingSuggestion:
    """The mapping offered for a file: per column its target, confidence and evidence."""

    columns: list[ColumnSuggestion]
    saved: bool = False  # the tenant's mapping for a file with the same headers

    @property
    def mapping(self) -> dict[str, str]:
        return {c.header: c.target for c in self.columns}

    @property
    def left_out(self) -> list[ColumnSuggestion]:
        return [c for c in self.columns if c.left_out]

    def corrected(self, corrections: dict[str, str]) -> dict[str, str]:
        """This mapping with the columns a person named set their way; the rest as suggested."""
        return {**self.mapping, **corrections}


def _label(target: str) -> str:
    """A target as evidence names it: 'full name', 'salutation', 'phone'."""
    return TARGET_LABELS[target].split(" (")[0].lower()


def _content_only(header: str, share: ContentShare) -> tuple[str, float, str] | None:
    """(target, confidence, evidence) for a column whose header says nothing, from its values."""
    targets = {
        "email": "email",
        "phone": "phone",
        "website": "website",
        "country": "country",
        "country_code": "country",
        "honorific": SALUTATION,
    }
    target = targets.get(share.what)
    if target is None:
        return None
    return target, round(share.share * 0.95, 2), share.evidence


def _suggest_one(
    header: str, meaning: HeaderMeaning, values: Sequence[str] | None, reader: ContentReader | None
) -> ColumnSuggestion:
    """One column's suggestion before fields are shared out between columns."""
    if meaning.sensitive is not None:
        what = SENSITIVE_KINDS[meaning.sensitive]
        return ColumnSuggestion(
            header, IGNORE, None, f"the header names {what}",
            left_out=f"its header says it holds {what}; map it yourself to keep it",
            sensitive=True,
        )
    shares = reader.shares(values) if reader is not None and values else []
    top = shares[0] if shares and shares[0].share >= MOSTLY else None
    if top is not None and top.what in ("card", "national_id"):
        return ColumnSuggestion(
            header, IGNORE, None, top.evidence,
            left_out=f"{top.evidence}; sensitive data is not stored unless you map it yourself",
            sensitive=True,
        )
    if meaning.type_of is not None:
        return ColumnSuggestion(
            header, IGNORE, None, "says which kind of phone or email its neighbouring column holds",
            left_out="it says which kind (home, work, mobile) the column beside it holds; read with it",
        )
    if meaning.field is not None:
        evidence = f"the header names {_label(meaning.field)}"
        if meaning.kind:
            evidence += f" ({meaning.kind})"
        if meaning.field == "title" and top is not None and top.what == "honorific":
            return ColumnSuggestion(header, SALUTATION, round(0.95 * top.share, 2),
                                    f"{top.evidence}, not job titles")
        share = next((s for s in shares if s.what == channel_of(meaning.field)), None)
        if channel_of(meaning.field) and values:
            if share is not None and share.share >= MOSTLY:
                return ColumnSuggestion(header, meaning.target, 0.99, f"{evidence}; {share.evidence}")
            seen = share.evidence if share is not None else f"no value is a valid {meaning.field}"
            return ColumnSuggestion(header, meaning.target, 0.6, f"{evidence}, but {seen}")
        return ColumnSuggestion(header, meaning.target, HEADER_CONFIDENCE, evidence)
    guess = _content_only(header, top) if top is not None else None
    if guess is not None:
        return ColumnSuggestion(header, guess[0], guess[1], guess[2])
    return ColumnSuggestion(header, CUSTOM, None, "no lead field matches this header")


def _resolve_names(columns: list[ColumnSuggestion]) -> list[ColumnSuggestion]:
    """A name column beside a last-name column holds first names ('name' + 'last_name'), beside a
    first-name column last names ('Vorname' + 'Name'); beside both, or alone, full names."""
    targets = {c.target for c in columns}
    if "full_name" not in targets or ("first_name" in targets) == ("last_name" in targets):
        return columns
    becomes = "last_name" if "first_name" in targets else "first_name"
    resolved = []
    done = False
    for column in columns:
        if column.target == "full_name" and not done:
            done = True
            column = replace(
                column, target=becomes,
                evidence=f"{column.evidence}; beside a {'first' if becomes == 'last_name' else 'last'}-name "
                f"column it holds {_label(becomes)}s",
            )
        resolved.append(column)
    return resolved


def suggest_columns(
    headers: Sequence[str],
    samples: dict[str, list[str]] | None = None,
    *,
    default_country: str = "US",
    max_custom_fields: int = DEFAULT_MAX_CUSTOM_FIELDS,
) -> list[ColumnSuggestion]:
    """The suggestion per column: the header's meaning, its sampled values where the header says
    nothing (or calls honorifics a title), sensitive columns left out. A lead field goes to the
    first column that names it (a header before a guess from content); phones and emails may have
    several columns; other columns are kept as custom fields up to the cap."""
    reader = ContentReader(default_country) if samples is not None else None
    first = [
        _suggest_one(h, read_header(str(h)), samples.get(h) if samples else None, reader) for h in headers
    ]
    by_header = {h: read_header(str(h)) for h in headers}
    taken: dict[str, str] = {}
    # Headers that name a field come first; a field guessed from content takes what is left
    # (a column of emails beside a named email column is someone else's: an owner, a referrer).
    # A named column with values goes before a named empty one (Google's empty 'Occupation'
    # yields job title to 'Organization 1 - Title').
    order = sorted(range(len(first)), key=lambda i: samples is not None and not samples.get(first[i].header))
    for guessed in (False, True):
        for index in order:
            column = first[index]
            target = column.target
            if target in (CUSTOM, IGNORE) or (by_header[column.header].field is None) != guessed:
                continue
            field = channel_of(target) or target
            if field in taken and (guessed or not channel_of(target)):
                first[index] = replace(
                    column, target=CUSTOM, confidence=None,
                    evidence=f"{column.evidence}; '{taken[field]}' already fills {_label(field)}",
                )
            else:
                taken.setdefault(field, column.header)
    columns = _resolve_names(first)
    result = []
    customs = 0
    for column in columns:
        if column.target in (CUSTOM, SALUTATION):
            if customs >= max_custom_fields:
                column = replace(
                    column, target=IGNORE, confidence=None,
                    left_out=f"a lead keeps at most {max_custom_fields:,} custom fields",
                    capped=True,
                )
            else:
                customs += 1
        result.append(column)
    return result


def suggest_mapping(
    headers: Sequence[str], max_custom_fields: int = DEFAULT_MAX_CUSTOM_FIELDS
) -> dict[str, str]:
    """header -> target from the headers alone (suggest_columns without sampled values)."""
    return {c.header: c.target for c in suggest_columns(headers, max_custom_fields=max_custom_fields)}


def header_signature(headers: Sequence[str]) -> str:
    """The same headers in any order and spelling of case and spaces give the same signature."""
    keys = sorted(" ".join(str(h).lower().split()) for h in headers)
    return hashlib.sha256("\x1f".join(keys).encode("utf-8")).hexdigest()


def validate_mapping(
    headers: Sequence[str],
    mapping: dict[str, str],
    max_custom_fields: int = DEFAULT_MAX_CUSTOM_FIELDS,
) -> dict[str, str]:
    """The mapping for exactly these headers, checked; unmentioned headers become custom fields."""
    known = set(headers)
    unknown = [h for h in mapping if h not in known]
    if unknown:
        raise ValidationError(
            f"the mapping names columns the file does not have: {', '.join(map(repr, unknown))}"
        )
    checked: dict[str, str] = {}
    used: dict[str, str] = {}
    for header in headers:
        target = mapping.get(header, CUSTOM) or CUSTOM
        if target not in TARGET_LABELS:
            raise ValidationError(
                f"column '{header}' is mapped to '{target}', which is not a lead field; use one "
                f"of: {', '.join(TARGET_LABELS)}"
            )
        channel = channel_of(target)
        if channel is not None:
            used.setdefault(channel, header)  # several phone or email columns are fine
        elif target in LEAD_FIELDS or target == SALUTATION:
            if target in used:
                raise ValidationError(
                    f"columns '{used[target]}' and '{header}' are both mapped to "
                    f"{_label(target)}; map only one of them"
                )
            used[target] = header
        checked[header] = target
    if "phone" not in used and "email" not in used:
        raise ValidationError("map a column to phone or to email: a lead needs at least one of them")
    customs = sum(1 for target in checked.values() if target in (CUSTOM, SALUTATION))
    if customs > max_custom_fields:
        raise ValidationError(
            f"{customs:,} columns are kept as custom fields, more than the {max_custom_fields:,} "
            "a lead may have; set the columns you do not need to 'Do not import'"
        )
    return checked


def saved_mapping_in(session: Session, headers: Sequence[str]) -> dict[str, str] | None:
    saved = session.scalar(
        select(ColumnMapping).where(ColumnMapping.header_signature == header_signature(headers))
    )
    if saved is None:
        return None
    by_key = {" ".join(str(h).lower().split()): h for h in headers}
    return {
        by_key[" ".join(k.lower().split())]: v
        for k, v in saved.mapping.items()
        if " ".join(k.lower().split()) in by_key
    }


def find_saved_mapping(db: Database, actor: Actor, headers: Sequence[str]) -> dict[str, str] | None:
    """The mapping this tenant saved for a file with the same headers, if any."""
    actor.require(Permission.manage_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return saved_mapping_in(session, headers)


def save_mapping_in(
    session: Session, tenant_id: int, headers: Sequence[str], mapping: dict[str, str]
) -> None:
    """Remember the mapping for the next file with these headers (inside the caller's transaction)."""
    signature = header_signature(headers)
    saved = session.scalar(select(ColumnMapping).where(ColumnMapping.header_signature == signature))
    if saved is None:
        session.add(
            ColumnMapping(
                tenant_id=tenant_id, header_signature=signature, headers=list(headers), mapping=dict(mapping)
            )
        )
    else:
        saved.headers = list(headers)
        saved.mapping = dict(mapping)


def mapping_suggestion(
    db: Database,
    actor: Actor,
    headers: Sequence[str],
    samples: dict[str, list[str]] | None = None,
    default_country: str = "US",
) -> MappingSuggestion:
    """The mapping to offer for these headers: the one the tenant saved for them, else the
    suggestion from the headers and (when given) each column's sampled values."""
    suggested = suggest_columns(
        headers, samples, default_country=default_country,
        max_custom_fields=db.settings.import_max_custom_fields,
    )
    saved = find_saved_mapping(db, actor, headers)
    if saved is None:
        return MappingSuggestion(suggested)
    columns = []
    for column in suggested:
        target = saved.get(column.header, CUSTOM)
        columns.append(
            ColumnSuggestion(
                column.header, target, 1.0, "saved for a file with these columns",
                left_out="left out in the mapping saved for these columns" if target == IGNORE else None,
            )
        )
    return MappingSuggestion(columns, saved=True)
