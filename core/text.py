"""Words for people: counts with the right plural, "a" or "an", one voice for messages, and
values quoted in a message cut to a readable length.

Every page, the command line and every error message build counted nouns and articles here,
so the dashboard never says "1 leads", "73 draft(s)" or "a email address".
"""

from __future__ import annotations

import re

SHOWN_CHARS = 40  # how much of a bad value a message quotes
ELLIPSIS = "…"


def cut(value: str, limit: int) -> str:
    """At most `limit` characters, the last an ellipsis when something was cut."""
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + ELLIPSIS


def shown(value: str) -> str:
    """A value as a message quotes it: cut after SHOWN_CHARS characters."""
    return cut(value, SHOWN_CHARS)

# Plurals that the spelling rules below get wrong; the words Leadflow shows are listed.
_IRREGULAR = {
    "person": "people",
    "child": "children",
    "is": "are",
    "was": "were",
    "has": "have",
    "this": "these",
    "that": "those",
    "does": "do",
}
_UNCHANGED = frozenset({"sms", "mms", "series", "staff", "feedback", "data", "info"})

# A word starting with a vowel letter but a consonant sound ("a user", "a one-off"), and the
# reverse ("an hour").
_CONSONANT_SOUND = re.compile(r"^(uni|use|usu|uti|ure|eu|ewe|one\b|once|ubiq|u\b|u-)", re.IGNORECASE)
_VOWEL_SOUND = re.compile(r"^(hour|honest|honou?r|heir)", re.IGNORECASE)
# Letters whose spoken names start with a vowel sound: "an SMS", "an MMS", "an LLM", "an API".
_VOWEL_LETTERS = frozenset("AEFHILMNORSX")
_ACRONYM = re.compile(r"^[A-Z][A-Z0-9]*s?\b")
_SENTENCE_END = re.compile(r"[.!?…:;]['\")\]]?$")
_FIRST_WORD = re.compile(r"^[a-z]+(?=[\s,:;]|$)")


def plural_noun(count: int, singular: str, plural: str | None = None) -> str:
    """The word for `count` things: "lead" for 1, "leads" otherwise (0 leads, 2 leads, -1 leads)."""
    if count == 1:
        return singular
    if plural is not None:
        return plural
    return _pluralise(singular)


def plural(count: int, singular: str, plural: str | None = None) -> str:
    """`count` and its noun: plural(1, "lead") -> "1 lead", plural(1234, "reply") -> "1,234 replies".

    The last word of a phrase is the one made plural: plural(2, "email address") ->
    "2 email addresses". `plural` overrides the spelling rules for an unusual word.
    """
    return f"{count:,} {plural_noun(count, singular, plural)}"


def _pluralise(phrase: str) -> str:
    head, _, word = phrase.rpartition(" ")
    prefix = f"{head} " if head else ""
    lower = word.lower()
    if lower in _UNCHANGED or not word:
        return phrase
    if lower in _IRREGULAR:
        return prefix + _match_case(word, _IRREGULAR[lower])
    if word.isupper() and len(word) > 1:  # an acronym: "2 URLs", "3 CSVs"
        return f"{prefix}{word}s"
    if re.search(r"[^aeiou]y$", lower):
        suffix_word = word[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", lower):
        suffix_word = word + "es"
    else:
        suffix_word = word + "s"
    return prefix + _match_case(word, suffix_word)


def _match_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def article(phrase: str) -> str:
    """ "a" or "an" for `phrase`, by how its first word sounds: an email, a user, an hour, an SMS."""
    text = phrase.strip().lstrip("'\"*_`(")
    if not text:
        return "a"
    acronym = _ACRONYM.match(text)
    if acronym and len(acronym.group(0).rstrip("s")) > 1:
        return "an" if text[0] in _VOWEL_LETTERS else "a"
    if text[0].isdigit():
        # Spoken numbers: "an 8-step sequence", "an 11 am slot", "an 18-month plan".
        return "an" if re.match(r"^(8|11(?!\d)|11\d{2}(?!\d)|18(?!\d)|18\d{2}(?!\d))", text) else "a"
    if _VOWEL_SOUND.match(text):
        return "an"
    if _CONSONANT_SOUND.match(text):
        return "a"
    return "an" if text[0].lower() in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """`phrase` after its article: with_article("email address") -> "an email address"."""
    return f"{article(phrase)} {phrase}"


def sentence(message: object) -> str:
    """A message in the dashboard's one voice: a capital first letter and a closing full stop.

    Core services write their messages in lower case so that they read well inside another
    sentence ("row 17: phone '12345' is not valid"); shown on their own they start with a
    capital. A first word that is a value (an address, a file name, a quoted name) keeps its
    case, and a message that already ends in punctuation keeps its ending.
    """
    text = " ".join(str(message).split())
    if not text:
        return text
    if _FIRST_WORD.match(text):
        text = text[0].upper() + text[1:]
    if not _SENTENCE_END.search(text):
        text += "."
    return text
