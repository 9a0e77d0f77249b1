"""Merge fields in campaign prompts: `{first_name}`, `{company}`, `{custom.plan}`, filled per lead.

A campaign's system prompt, its A/B variants' prompts and its follow-ups' prompts may name lead
fields in braces. The editor refuses a name it does not know (and a custom field no lead of the
tenant has); at draft time each is replaced by the lead's value. A lead without the value gets
the field's fallback: `{first_name}` -> "there", `{last_name}` -> nothing, `{company}` -> "your
company", `{title}` -> "your role", `{industry}` -> "your industry", `{city}` -> "your area",
`{country}` -> "your country", a custom field -> nothing; `{custom.plan|the free plan}` gives a
fallback of its own. Braces around anything that is not a field name (`{"a": 1}`) stay as written,
and so does a name that is not a merge field (`{notes}`, in a prompt saved before the check).

A lead's value is data, not an instruction: it goes into the prompt on one line, in double
quotes, cut to `VALUE_CHARS`, and the compose rules say quoted values are the recipient's data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.campaign_shape import Step, Variant
from core.errors import ValidationError
from core.leads.mapping import CUSTOM
from core.models import Lead, LeadImport

CUSTOM_PREFIX = "custom."
FALLBACKS: dict[str, str] = {
    "first_name": "there",
    "last_name": "",
    "company": "your company",
    "title": "your role",
    "industry": "your industry",
    "city": "your area",
    "country": "your country",
}
VALUE_CHARS = 80
# How many leads' custom fields are read, besides the imports' mappings, to learn their names.
CUSTOM_SAMPLE = 200
# A name (`company`) or a custom field (`custom.Plan tier`), and an optional `|fallback`.
FIELD = re.compile(r"\{\s*([A-Za-z_]\w*(?:\.[^{}|]+?)?)\s*(?:\|([^{}]*))?\}")
HELP = ("Merge fields: " + ", ".join(f"{{{name}}}" for name in FALLBACKS)
        + ", {custom.NAME}; {field|fallback} for a lead without the value.")


def custom_key(name: str) -> str:
    """A custom field's name as matched: case, spaces, dashes and underscores do not count."""
    return re.sub(r"[\s_-]+", "_", name.strip().lower())


def fields_in(text: str) -> list[str]:
    """The merge field names a prompt uses, in order, each once."""
    return list(dict.fromkeys(match.group(1).strip() for match in FIELD.finditer(text or "")))


def check_fields(texts: Mapping[str, str], custom_names: Iterable[str]) -> None:
    """Refuse an unknown field: `texts` maps where a prompt is ("the variant B prompt") to its text."""
    known_custom = {custom_key(n) for n in custom_names}
    for where, text in texts.items():
        for name in fields_in(text):
            if name.startswith(CUSTOM_PREFIX):
                custom = name[len(CUSTOM_PREFIX):]
                if custom_key(custom) not in known_custom:
                    have = ", ".join(sorted(known_custom)) or "none yet"
                    raise ValidationError(
                        f"{where} uses the custom field {{{name}}}, which no lead has "
                        f"(custom fields: {have})"
                    )
            elif name not in FALLBACKS:
                raise ValidationError(
                    f"{where} uses an unknown merge field {{{name}}}; use "
                    + ", ".join(f"{{{n}}}" for n in FALLBACKS) + " or {custom.NAME}"
                )


def _lead_value(lead: Mapping[str, Any], name: str) -> str:
    if name.startswith(CUSTOM_PREFIX):
        wanted = custom_key(name[len(CUSTOM_PREFIX):])
        custom = lead.get("custom_fields") or {}
        value = next((v for k, v in custom.items() if custom_key(str(k)) == wanted), None)
    else:
        value = lead.get(name)
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:VALUE_CHARS].replace('"', "'")


def fill(text: str, lead: Mapping[str, Any]) -> str:
    """`text` with each merge field replaced by the lead's value (quoted) or its fallback."""

    def replace(match: re.Match[str]) -> str:
        name, fallback = match.group(1).strip(), match.group(2)
        if name not in FALLBACKS and not name.startswith(CUSTOM_PREFIX):
            # Never a lead's other fields ({notes}, {phone}): a prompt saved before fields were
            # checked keeps such a name as written.
            return match.group(0)
        if value := _lead_value(lead, name):
            return f'"{value}"'
        replacement = fallback.strip() if fallback is not None else FALLBACKS.get(name, "")
        return replacement or _GONE

    # A field that comes out empty takes one space next to it along: "Hi {last_name}, ..." ->
    # "Hi, ...", "the {custom.plan} plan" -> "the plan".
    return _EMPTY.sub("", FIELD.sub(replace, text))


_GONE = "\x00"
_EMPTY = re.compile(r" \x00(?=[ ,.;:!?])|\x00 ?")


def check_campaign_prompts(session: Session, values: Mapping[str, Any]) -> None:
    """`check_fields` for a campaign's prompts; the tenant's custom fields are read only when used."""
    texts = prompt_texts(values)
    uses_custom = any(n.startswith(CUSTOM_PREFIX) for t in texts.values() for n in fields_in(t))
    check_fields(texts, tenant_custom_fields(session) if uses_custom else ())


def tenant_custom_fields(session: Session) -> set[str]:
    """The custom field names the tenant's leads carry: from its imports' mappings and a sample."""
    names: set[str] = set()
    for mapping in session.scalars(select(LeadImport.mapping)):
        names.update(h for h, target in (mapping or {}).items() if target == CUSTOM)
    for custom in session.scalars(select(Lead.custom_fields).limit(CUSTOM_SAMPLE)):
        names.update(str(k) for k in (custom or {}))
    return names


def prompt_texts(values: Mapping[str, Any]) -> dict[str, str]:
    """The prompts among a campaign's values, each named for an error message."""
    texts: dict[str, str] = {}
    if values.get("system_prompt"):
        texts["the system prompt"] = str(values["system_prompt"])
    variants: tuple[Variant, ...] = values.get("variants") or ()
    for variant in variants:
        if variant.prompt:
            texts[f"the variant {variant.name} prompt"] = variant.prompt
    steps: tuple[Step, ...] = values.get("steps") or ()
    for number, step in enumerate(steps):
        if step.prompt:
            where = "the first touch prompt" if number == 0 else f"the follow-up {number} prompt"
            texts[where] = step.prompt
    return texts
