"""The reply agent's offline rules: every class, its evidence, and the date or person it names."""

from __future__ import annotations

from datetime import date

import pytest

from core.inbound.classify import (
    Person,
    ReplyClass,
    classification_from_model,
    classify_by_rules,
)
from core.inbound.dates import find_date

TODAY = date(2026, 12, 1)  # a Tuesday


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Carrier keywords, any case, with punctuation.
        ("STOP", ReplyClass.unsubscribe),
        ("stop.", ReplyClass.unsubscribe),
        ("Unsubscribe!", ReplyClass.unsubscribe),
        ("please, STOP", ReplyClass.unsubscribe),
        ("opt out", ReplyClass.unsubscribe),
        # Revocations "in any reasonable manner" (FCC, April 2025).
        ("please stop texting me", ReplyClass.unsubscribe),
        ("Take me off your list", ReplyClass.unsubscribe),
        ("don't contact me again", ReplyClass.unsubscribe),
        ("Do not text me anymore.", ReplyClass.unsubscribe),
        ("Remove me from this list please", ReplyClass.unsubscribe),
        ("Not interested. Stop messaging me", ReplyClass.unsubscribe),
        ("lose my number", ReplyClass.unsubscribe),
        ("I'd like to unsubscribe", ReplyClass.unsubscribe),
        ("Sounds great, let's set up a call", ReplyClass.interested),
        ("Yes please, tell me more", ReplyClass.interested),
        ("How much does it cost?", ReplyClass.question),
        ("Can you send me the pricing", ReplyClass.question),
        ("Not right now, maybe next quarter", ReplyClass.not_now),
        ("Busy right now. Circle back in January", ReplyClass.not_now),
        ("Not interested, thanks", ReplyClass.not_interested),
        ("No thank you, we already have a vendor.", ReplyClass.not_interested),
        ("Wrong number", ReplyClass.wrong_person),
        ("I'm not the right person, you should talk to Maria Lopez", ReplyClass.referral),
        ("I am out of the office until January 5 with limited access to email.", ReplyClass.out_of_office),
        ("Thank you for your email. This is an automated response.", ReplyClass.auto_reply),
        ("ok", ReplyClass.unclassified),
    ],
)
def test_each_class_by_rules(body: str, expected: ReplyClass) -> None:
    assert classify_by_rules(body, today=TODAY).kind is expected


def test_the_quoted_message_and_signature_are_not_read() -> None:
    body = ("Sounds good, call me Thursday.\n\n"
            "On Mon, Nov 30, 2026 at 9:00 AM Sam wrote:\n> Reply STOP to opt out")
    assert classify_by_rules(body, today=TODAY).kind is ReplyClass.interested


def test_an_automatic_subject_is_an_auto_reply_and_out_of_office_with_its_date() -> None:
    auto = classify_by_rules("Thanks, we got it.", "Automatic reply: Quick question", today=TODAY)
    assert auto.kind is ReplyClass.auto_reply
    away = classify_by_rules("I'm on vacation until 12/20 and will be back then.", today=TODAY)
    assert (away.kind, away.day) == (ReplyClass.out_of_office, date(2026, 12, 20))
    assert any("12/20" in e for e in away.evidence)


def test_not_now_names_its_date_and_evidence() -> None:
    found = classify_by_rules("Not now. Try me again in March.", today=TODAY)
    assert found.kind is ReplyClass.not_now
    assert found.day == date(2027, 3, 1)
    assert found.detail() == {"evidence": ["“Not now”", "come back from “in March”"],
                              "source": "rules", "date": "2027-03-01"}


@pytest.mark.parametrize(
    ("body", "person"),
    [
        ("I'm not the right person - talk to Maria Lopez (maria@acme.com), she handles purchasing.",
         Person("Maria Lopez", "maria@acme.com")),
        ("Wrong person. Jane Doe handles marketing here.", Person("Jane Doe")),
        ("He left the company, email sarah@acme.com instead", Person(email="sarah@acme.com")),
        ("Please contact John Smith for this", Person("John Smith")),
    ],
)
def test_a_referral_names_the_person(body: str, person: Person) -> None:
    found = classify_by_rules(body, today=TODAY)
    assert (found.kind, found.person) == (ReplyClass.referral, person)


def test_an_interested_reply_with_its_own_number_is_no_referral() -> None:
    found = classify_by_rules("Sure, call me at +1 415 555 0100", today=TODAY)
    assert (found.kind, found.person) == (ReplyClass.interested, None)


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("back on 2027-01-04", False, date(2027, 1, 4)),
        ("until January 5th", False, date(2027, 1, 5)),
        ("until Dec 24, 2026", False, date(2026, 12, 24)),
        ("back on the 7th of January", False, date(2027, 1, 7)),
        ("until 12/20", False, date(2026, 12, 20)),
        ("until 03/02", True, date(2027, 2, 3)),  # day first outside the US
        ("in two weeks", False, date(2026, 12, 15)),
        ("in 3 months", False, date(2027, 3, 1)),
        ("tomorrow", False, date(2026, 12, 2)),
        ("next week", False, date(2026, 12, 7)),  # its Monday
        ("next month", False, date(2027, 1, 1)),
        ("next quarter", False, date(2027, 1, 1)),
        ("after the holidays", False, date(2027, 1, 2)),
        ("back on Friday", False, date(2026, 12, 4)),
        ("in March", False, date(2027, 3, 1)),
        ("no date here", False, None),
    ],
)
def test_dates(text: str, day_first: bool, expected: date | None) -> None:
    found = find_date(text, today=TODAY, day_first=day_first)
    assert (found.day if found else None) == expected


def test_a_model_answer_becomes_a_classification() -> None:
    text = ('Sure: {"class": "referral", "evidence": "talk to Kim", "date": null, '
            '"person": {"name": "Kim Lee", "email": "kim@acme.com", "phone": null}}')
    found = classification_from_model(text)
    assert found is not None
    expected = (ReplyClass.referral, Person("Kim Lee", "kim@acme.com"), "model")
    assert (found.kind, found.person, found.source) == expected
    assert classification_from_model('{"class": "maybe"}') is None
    assert classification_from_model("I cannot tell") is None
    dated = classification_from_model('{"class": "not_now", "evidence": "in spring", "date": "2027-04-01"}')
    assert dated is not None and dated.day == date(2027, 4, 1)
