"""Lead search text: what a lead is found by, folded so that case and accents never matter.

A lead's name, email, company and phone digits are stored folded in `leads.search_text`
(maintained on every write: the ORM through mapper events, the importer's bulk path by hand),
and a query is folded the same way, so one indexed LIKE finds "Müller" for "muller" or "MÜLLER"
on SQLite and PostgreSQL alike, with no database extension for accents.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# Letters that carry no combining mark in Unicode (NFKD leaves them whole), folded as people type them.
_LETTERS_WITHOUT_MARKS = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "ŀ": "l", "þ": "th", "æ": "ae", "œ": "oe"}
)
# What a phone number is typed with: digits, spaces, dashes, dots, slashes, parentheses, a leading +.
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]*\d[\d\s().\-/]*")
_NOT_DIGIT = re.compile(r"\D")
_FIELD_SEPARATOR = "\n"  # a query's whitespace is collapsed to spaces, so a phrase never spans two fields
SEARCHED_FIELDS = ("first_name", "last_name", "email", "company", "phone")


def fold(text: str) -> str:
    """Case- and accent-free text for matching: NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.translate(_LETTERS_WITHOUT_MARKS).split())


def lead_search_text(values: Mapping[str, Any]) -> str:
    """The folded text a lead is found by, from its fields (missing ones count as empty)."""
    name = f"{values.get('first_name') or ''} {values.get('last_name') or ''}"
    digits = _NOT_DIGIT.sub("", values.get("phone") or "")
    parts = (fold(name), fold(values.get("email") or ""), fold(values.get("company") or ""), digits)
    return _FIELD_SEPARATOR.join(parts)


def search_needles(query: str) -> list[str]:
    """The substrings any of which a lead's search text must contain to match the query.

    The folded query itself, and for a query typed like a phone number ("415-555-0128",
    "+1 (415) 555 0128", "0207 946 0018") its digits, also without a national trunk prefix of
    zeros, so a national form finds the stored E.164 number.
    """
    folded = fold(query)
    if not folded:
        return []
    needles = [folded]
    stripped = query.strip()
    if _PHONE_LIKE.fullmatch(stripped):
        digits = _NOT_DIGIT.sub("", stripped)
        needles.append(digits)
        if not stripped.startswith("+") and digits.lstrip("0"):
            needles.append(digits.lstrip("0"))
    return list(dict.fromkeys(needles))
