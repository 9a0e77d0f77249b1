"""Counted nouns, articles and the one voice of messages (core.text)."""

from __future__ import annotations

import pytest

from core.text import article, plural, plural_noun, sentence, with_article


@pytest.mark.parametrize(
    ("count", "singular", "expected"),
    [
        (0, "lead", "0 leads"),
        (1, "lead", "1 lead"),
        (2, "lead", "2 leads"),
        (-1, "lead", "-1 leads"),
        (1_234, "lead", "1,234 leads"),
        (1, "reply", "1 reply"),
        (3, "reply", "3 replies"),
        (2, "day", "2 days"),
        (73, "draft", "73 drafts"),
        (1, "row", "1 row"),
        (5, "email address", "5 email addresses"),
        (2, "match", "2 matches"),
        (2, "box", "2 boxes"),
        (2, "person", "2 people"),
        (2, "SMS segment", "2 SMS segments"),
        (3, "SMS", "3 SMS"),
        (2, "URL", "2 URLs"),
        (2, "failed lead", "2 failed leads"),
        (2, "Entry", "2 Entries"),
    ],
)
def test_plural(count: int, singular: str, expected: str) -> None:
    assert expected == plural(count, singular)


def test_plural_takes_an_unusual_spelling() -> None:
    assert ("1 criterion", "2 criteria") == (
        plural(1, "criterion", "criteria"),
        plural(2, "criterion", "criteria"),
    )


@pytest.mark.parametrize(("count", "expected"), [(0, "rows"), (1, "row"), (2, "rows")])
def test_plural_noun_is_the_word_alone(count: int, expected: str) -> None:
    assert expected == plural_noun(count, "row")


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("email address", "an email address"),
        ("phone number", "a phone number"),
        ("A variant", "an A variant"),
        ("B variant", "a B variant"),
        ("SMS sender id", "an SMS sender id"),
        ("URL", "a URL"),
        ("LLM call", "an LLM call"),
        ("unsubscribe link", "an unsubscribe link"),
        ("user", "a user"),
        ("unique name", "a unique name"),
        ("hour", "an hour"),
        ("honest answer", "an honest answer"),
        ("opt-out line", "an opt-out line"),
        ("one-off send", "a one-off send"),
        ("European number", "a European number"),
        ("8-step sequence", "an 8-step sequence"),
        ("3-step sequence", "a 3-step sequence"),
        ("11 am slot", "an 11 am slot"),
        ("postal address", "a postal address"),
        ("", "a "),
    ],
)
def test_with_article(phrase: str, expected: str) -> None:
    assert expected == with_article(phrase)


def test_article_alone() -> None:
    assert ("an", "a") == (article("import"), article("campaign"))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("the start date is after the end date", "The start date is after the end date."),
        ("The start date is after the end date.", "The start date is after the end date."),
        ("row 17: phone '12345' is not valid", "Row 17: phone '12345' is not valid."),
        ("sales@example.com is not verified", "sales@example.com is not verified."),
        ("'acme' is taken", "'acme' is taken."),
        ("iPhone leads only", "iPhone leads only."),
        ("campaign 7 does not exist", "Campaign 7 does not exist."),
        ("are you sure?", "Are you sure?"),
        ("the file is called 'x.csv'", "The file is called 'x.csv'."),
        ("pick one of: A, B", "Pick one of: A, B."),
        ("two\nlines", "Two lines."),
        ("", ""),
    ],
)
def test_sentence_is_one_voice(message: str, expected: str) -> None:
    assert expected == sentence(message)
