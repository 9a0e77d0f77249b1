"""Column mapping: spreadsheet headers matched to lead fields, and mappings saved per tenant.

Every step is linear in the number of columns (set and dict look-ups, never a column compared
with every other), and a lead keeps at most `max_custom_fields` custom fields: the suggestion
keeps the first ones and leaves the rest out, a mapping that keeps more is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import ValidationError
from core.models import ColumnMapping
from core.permissions import Actor, Permission

CUSTOM = "custom"  # kept in the lead's custom fields under the header's name
IGNORE = "ignore"  # not imported at all
DEFAULT_MAX_CUSTOM_FIELDS = 50  # Settings.import_max_custom_fields

# The lead fields a column can fill, with the label the mapping editor shows.
LEAD_FIELDS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split into first and last)",
    "phone": "Phone",
    "email": "Email",
    "company": "Company",
    "title": "Job title",
    "website": "Website",
    "industry": "Industry",
    "city": "City",
    "country": "Country",
    "time_zone": "Time zone",
    "notes": "Notes",
    "tags": "Tags (comma-separated)",
}
# Phone and email may come from several columns: each column's kind says which is best for
# its channel (a mobile first for SMS, a work address first for email), the others become
# the lead's alternates. "phone" and "email" alone leave the kind to the header's words.
CHANNEL_FIELDS = ("phone", "email")
CHANNEL_KINDS: dict[str, tuple[str, ...]] = {
    "phone": ("mobile", "work", "home", "other"),
    "email": ("work", "home", "other"),
}
KIND_SEPARATOR = ":"
CHANNEL_TARGETS: dict[str, str] = {
    f"{name}{KIND_SEPARATOR}{kind}": f"{LEAD_FIELDS[name]} ({kind})"
    for name, kinds in CHANNEL_KINDS.items()
    for kind in kinds
}
TARGET_LABELS: dict[str, str] = {
    **LEAD_FIELDS,
    **CHANNEL_TARGETS,
    CUSTOM: "Keep as a custom field",
    IGNORE: "Do not import",
}

# Header synonyms, compared after lower-casing and dropping everything but letters and digits.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone",
        "phonenumber",
        "phoneno",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "mobileno",
        "cell",
        "cellphone",
        "cellular",
        "cellnumber",
        "tel",
        "telephone",
        "telephonenumber",
        "telno",
        "contactnumber",
        "msisdn",
        "directdial",
        "workphone",
    ),
    "email": (
        "email",
        "emailaddress",
        "mail",
        "emailid",
        "workemail",
        "businessemail",
        "contactemail",
        "emailaddr",
    ),
    "first_name": ("firstname", "givenname", "forename", "fname", "first", "christianname"),
    "last_name": ("lastname", "surname", "familyname", "lname", "last"),
    "full_name": ("name", "fullname", "contactname", "contact", "leadname", "person"),
    "company": (
        "company",
        "companyname",
        "organisation",
        "organization",
        "organisationname",
        "organizationname",
        "org",
        "account",
        "accountname",
        "employer",
        "business",
        "firm",
    ),
    "title": ("title", "jobtitle", "role", "position", "designation", "jobrole", "job"),
    "website": (
        "website",
        "web",
        "domain",
        "url",
        "site",
        "homepage",
        "companywebsite",
        "websiteurl",
        "companydomain",
    ),
    "industry": ("industry", "sector", "vertical", "industrytype"),
    "city": ("city", "town", "locality"),
    "country": ("country", "countrycode", "nation", "countryregion"),
    "time_zone": ("timezone", "tz", "zone"),
    "notes": ("notes", "note", "comments", "comment", "remarks", "description"),
    "tags": ("tags", "tag", "labels", "label"),
}
_SYNONYM_TO_FIELD = {synonym: name for name, synonyms in SYNONYMS.items() for synonym in synonyms}
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def header_key(header: str) -> str:
    """The form a header is compared in: 'E-mail Address ' -> 'emailaddress'."""
    return _NOT_ALNUM.sub("", str(header).lower())


def split_target(target: str) -> tuple[str, str | None]:
    """A mapping target as (field, kind): 'phone:mobile' -> ('phone', 'mobile'), 'city' -> ('city', None)."""
    name, _, kind = target.partition(KIND_SEPARATOR)
    return name, kind or None


def field_for_header(header: str) -> str | None:
    return _SYNONYM_TO_FIELD.get(header_key(header))


def looks_like_header_row(cells: Sequence[Any]) -> bool:
    """True when at least two cells name lead fields (how a header row is told from a title)."""
    return sum(1 for c in cells if field_for_header(str(c or ""))) >= 2


def suggest_mapping(
    headers: Sequence[str], max_custom_fields: int = DEFAULT_MAX_CUSTOM_FIELDS
) -> dict[str, str]:
    """header -> lead field from the synonym table; the first header for a field wins. Other
    headers become custom fields up to the cap, and are left out after it."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    customs = 0
    for header in headers:
        name = field_for_header(header)
        if name and name not in taken:
            mapping[header] = name
            taken.add(name)
        elif customs < max_custom_fields:
            mapping[header] = CUSTOM
            customs += 1
        else:
            mapping[header] = IGNORE
    return mapping


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
        name = split_target(target)[0]
        if name in CHANNEL_FIELDS:
            used.setdefault(name, header)  # several phone or email columns: best one + alternates
        elif target in LEAD_FIELDS:
            if target in used:
                raise ValidationError(
                    f"columns '{used[target]}' and '{header}' are both mapped to "
                    f"{LEAD_FIELDS[target].lower()}; map only one of them"
                )
            used[target] = header
        checked[header] = target
    if "phone" not in used and "email" not in used:
        raise ValidationError("map a column to phone or to email: a lead needs at least one of them")
    customs = sum(1 for target in checked.values() if target == CUSTOM)
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


def mapping_for(db: Database, actor: Actor, headers: Sequence[str]) -> tuple[dict[str, str], bool]:
    """The mapping to offer for these headers and whether it is one the tenant saved."""
    saved = find_saved_mapping(db, actor, headers)
    if saved is not None:
        return {h: saved.get(h, CUSTOM) for h in headers}, True
    return suggest_mapping(headers, db.settings.import_max_custom_fields), False
