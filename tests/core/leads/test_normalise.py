"""Normalising phones, emails, names, websites, countries and time zones, case by case."""

from __future__ import annotations

import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email

from core.leads.normalise import (
    FieldLimits,
    LeadNormaliser,
    normalise_email,
    normalise_name,
    normalise_tags,
    normalise_website,
    split_full_name,
)
from core.leads.phones import PhoneNormaliser
from core.leads.places import normalise_country, normalise_time_zone, time_zone_for_place

PHONES_VALID = [
    # (default country, raw, E.164)
    ("US", "(415) 555-0100", "+14155550100"),
    ("US", "+1 415 555 0100", "+14155550100"),
    ("US", "415.555.0100", "+14155550100"),
    ("US", "1-415-555-0100", "+14155550100"),
    ("US", "14155550100", "+14155550100"),
    ("US", "+14155550100", "+14155550100"),
    ("US", "'+14155550100", "+14155550100"),
    ("US", "'4155550100", "+14155550100"),
    ("US", "  415 555 0100  ", "+14155550100"),
    ("US", "415-555-0100 x123", "+14155550100"),
    ("US", "415-555-0100 ext. 45", "+14155550100"),
    ("US", "(415) 555-0100 #7", "+14155550100"),
    ("US", "4155550100.0", "+14155550100"),
    ("US", "4.155550100E+09", "+14155550100"),
    ("US", "tel:+1-415-555-0100", "+14155550100"),
    ("US", "0044 20 7946 0018", "+442079460018"),
    ("US", "011 44 20 7946 0018", "+442079460018"),
    ("US", "+44 (0)20 7946 0018", "+442079460018"),
    ("CA", "(604) 555-0123", "+16045550123"),
    ("GB", "020 7946 0018", "+442079460018"),
    ("GB", "+44 20 7946 0018", "+442079460018"),
    ("GB", "020-7946-0018", "+442079460018"),
    ("DE", "030 12345678", "+493012345678"),
    ("DE", "+49 30 12345678", "+493012345678"),
    ("DE", "0171 1234567", "+491711234567"),
    ("FR", "01 23 45 67 89", "+33123456789"),
    ("FR", "06.12.34.56.78", "+33612345678"),
    ("IT", "06 1234 5678", "+390612345678"),
    ("ES", "912 345 678", "+34912345678"),
    ("AU", "(02) 9876 5432", "+61298765432"),
    ("AU", "0412 345 678", "+61412345678"),
    ("IN", "98765 43210", "+919876543210"),
    ("BR", "(11) 91234-5678", "+5511912345678"),
    ("JP", "03-1234-5678", "+81312345678"),
    ("NL", "020 123 4567", "+31201234567"),
]

PHONES_INVALID = [
    ("US", "12345", "phone '12345' is not a valid number for US"),
    ("US", "555-0100", "phone '555-0100' is not a valid number for US"),
    ("US", "+1 123 456 7890", "phone '+1 123 456 7890' is not a valid phone number"),
    ("GB", "020 7946", "phone '020 7946' is not a valid number for GB"),
    ("US", "call me", "phone 'call me' is not a phone number"),
    ("US", "4.15555E+09", "phone '4.15555E+09' lost its last digits"),
    ("DE", "+49 1", "phone '+49 1' is not a phone number"),
]


@pytest.mark.parametrize(("country", "raw", "e164"), PHONES_VALID)
def test_valid_phones_become_e164(country: str, raw: str, e164: str) -> None:
    result = PhoneNormaliser(country)(raw)
    assert result.problem is None
    assert result.e164 == e164


@pytest.mark.parametrize(("country", "raw", "message"), PHONES_INVALID)
def test_invalid_phones_say_why(country: str, raw: str, message: str) -> None:
    result = PhoneNormaliser(country)(raw)
    assert result.e164 is None
    assert (result.error(raw) or "").startswith(message)


def test_empty_phone_is_no_phone_and_no_problem() -> None:
    result = PhoneNormaliser("US")("   ")
    assert (result.e164, result.problem) == (None, None)


@pytest.mark.parametrize(
    ("country", "raw", "zone"),
    [
        ("US", "(415) 555-0100", "America/Los_Angeles"),
        ("US", "(212) 555-0100", "America/New_York"),
        ("US", "(312) 555-0100", "America/Chicago"),
        ("GB", "020 7946 0018", "Europe/London"),
        ("DE", "030 12345678", "Europe/Berlin"),
        ("US", "+1 800 555 0100", None),  # toll-free: no single zone
    ],
)
def test_time_zone_from_the_number_when_unambiguous(country: str, raw: str, zone: str | None) -> None:
    assert PhoneNormaliser(country)(raw).time_zone == zone


def test_the_cache_shares_results_across_formats() -> None:
    phones = PhoneNormaliser("US")
    first = phones("(415) 555-0100")
    assert phones("415 555 0100") is first
    assert phones("+14155550100") is not first  # a different key, the same number
    assert phones("+14155550100").e164 == first.e164


EMAILS_VALID = [
    ("ada@example.com", "ada@example.com"),
    ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
    ("  bob@example.org ", "bob@example.org"),
    ("<carl@example.net>", "carl@example.net"),
    ("mailto:dora@example.com", "dora@example.com"),
    ("first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
    ("o'neil@example.ie", "o'neil@example.ie"),
    ("josé@example.com", "josé@example.com"),
    ("user@bücher.example", "user@bücher.example"),
    ("x_y-z@example-domain.com", "x_y-z@example-domain.com"),
]
EMAILS_INVALID = [
    "mal.formed@",
    "no-at-sign.example.com",
    "two@@example.com",
    "a..b@example.com",
    ".lead@example.com",
    "user@localhost",
    "user@example",
    "user@foo.test",
    "user @example.com",
    "user@ab--cd.com",
]


@pytest.mark.parametrize(("raw", "expected"), EMAILS_VALID)
def test_valid_emails_are_normalised(raw: str, expected: str) -> None:
    assert normalise_email(raw) == (expected, None)


@pytest.mark.parametrize("raw", EMAILS_INVALID)
def test_invalid_emails_say_why(raw: str) -> None:
    email, problem = normalise_email(raw)
    assert email is None
    assert problem is not None and problem.startswith(f"email '{raw.strip()}' is not valid: ")


@pytest.mark.parametrize(
    "raw",
    [
        *(r for r, _ in EMAILS_VALID),
        *EMAILS_INVALID,
        "a@b.co",
        "A-B@x-y.example.org",
        "very.long.local.part.with.many.dots@example.com",
        "x@123.example.com",
        "x@example.c0m",
        "x@-example.com",
        "x@example-.com",
        "x" * 65 + "@example.com",
        # Letters beyond ASCII before the @: the international fast path, or email-validator.
        "Chloé.123@Example5.com",
        "JOSÉ.7@EXAMPLE.COM",
        "müller@example.de",
        "δοκιμή@example.gr",
        "用户@example.cn",
        "jose\u0301@example.com",
        "é..x@example.com",
        ".é@example.com",
        "é.@example.com",
        "é\u200b@example.com",
        "é\u0301x@example.com",
        "é¦@example.com",
        "é@localhost",
        "é@foo.test",
        "é@ab--cd.com",
        "é@bücher.example",
        "é" * 65 + "@example.com",
        "é" * 64 + "@example.com",
        "é@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".com",
        "é@@example.com",
        "é @example.com",
        "İstanbul@example.com",
        "ǅ@example.com",
        "٣@example.com",
        "ⅷ@example.com",
        "ß@example.com",
    ],
)
def test_the_fast_path_agrees_with_email_validator(raw: str) -> None:
    text = raw.strip().strip("<>").strip().removeprefix("mailto:")
    try:
        expected: str | None = validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    assert normalise_email(raw)[0] == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  ada  ", "Ada"),
        ("ADA", "Ada"),
        ("ada", "Ada"),
        ("o'neil", "O'Neil"),
        ("MARY-JANE", "Mary-Jane"),
        ("McDonald", "McDonald"),
        ("van Rossum", "van Rossum"),
        ("jean  luc", "Jean Luc"),
        ("", None),
    ],
)
def test_names_are_trimmed_and_recased_only_when_all_one_case(raw: str, expected: str | None) -> None:
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("Lovelace, Ada", ("Ada", "Lovelace")),
        ("Ada", ("Ada", None)),
        ("Guido van Rossum", ("Guido van", "Rossum")),
        ("", (None, None)),
    ],
)
def test_full_names_are_split(raw: str, expected: tuple[str | None, str | None]) -> None:
    assert split_full_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Example.com/about?x=1", "example.com"),
        ("http://example.org", "example.org"),
        ("www.example.net/", "example.net"),
        ("example.co.uk", "example.co.uk"),
        ("EXAMPLE.COM:8080/path", "example.com"),
        ("ada@example.com", "example.com"),
        ("not a website", None),
        ("localhost", None),
        ("", None),
    ],
)
def test_websites_become_domains(raw: str, expected: str | None) -> None:
    assert normalise_website(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("US", "US"),
        ("usa", "US"),
        ("United States", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Germany", "DE"),
        ("deutschland", "DE"),
        ("France", "FR"),
        ("gb", "GB"),
        ("Atlantis", None),
        ("", None),
    ],
)
def test_countries_become_iso_codes(raw: str, expected: str | None) -> None:
    assert normalise_country(raw) == expected


@pytest.mark.parametrize(
    ("country", "city", "zone"),
    [
        ("DE", None, None),
        ("FR", None, "Europe/Paris"),
        ("US", None, None),
        ("US", "San Francisco", "America/Los_Angeles"),
        ("US", "New York", "America/New_York"),
        (None, "Chicago", "America/Chicago"),
        ("GB", "Chicago", "Europe/London"),
        ("JP", None, "Asia/Tokyo"),
    ],
)
def test_time_zone_from_place(country: str | None, city: str | None, zone: str | None) -> None:
    assert time_zone_for_place(country, city) == zone


def test_time_zone_names() -> None:
    assert normalise_time_zone("europe/berlin") == "Europe/Berlin"
    assert normalise_time_zone("Mars/Olympus") is None


def test_tags() -> None:
    assert normalise_tags("VIP, trade show;2026 | vip") == ["vip", "trade show", "2026"]


def _normalise(rows: list[dict[str, str]], mapping: dict[str, str], country: str = "US") -> list:
    frame = pd.DataFrame(rows).fillna("")
    return LeadNormaliser(country, mapping).rows(frame, range(2, 2 + len(frame)))


def test_row_time_zone_prefers_column_then_phone_then_place() -> None:
    mapping = {"p": "phone", "e": "email", "c": "country", "city": "city", "tz": "time_zone"}
    rows = [
        {"p": "(415) 555-0100", "e": "", "c": "", "city": "", "tz": "Europe/Paris"},
        {"p": "(415) 555-0101", "e": "", "c": "", "city": "", "tz": ""},
        {"p": "", "e": "a@example.com", "c": "France", "city": "", "tz": ""},
        {"p": "", "e": "b@example.com", "c": "US", "city": "Boston", "tz": ""},
        {"p": "", "e": "c@example.com", "c": "US", "city": "", "tz": "nowhere"},
    ]
    outcomes = _normalise(rows, mapping)
    zones = [o.as_dict()["time_zone"] for o in outcomes]
    assert zones == ["Europe/Paris", "America/Los_Angeles", "Europe/Paris", "America/New_York", None]
    assert "time zone 'nowhere'" in outcomes[4].warnings[0]


def test_row_reads_national_numbers_in_its_own_country() -> None:
    outcomes = _normalise([{"p": "020 7946 0018", "c": "United Kingdom"}], {"p": "phone", "c": "country"})
    assert outcomes[0].as_dict()["phone"] == "+442079460018"
    assert outcomes[0].as_dict()["country"] == "GB"


def test_row_problems_and_blank_rows() -> None:
    rows = [{"p": "12345", "e": "x@"}, {"p": "", "e": ""}, {"p": "", "e": "", "n": "only a note"}]
    outcomes = _normalise(rows, {"p": "phone", "e": "email", "n": "notes"})
    assert [o.row for o in outcomes] == [2, 4]  # the blank row 3 is skipped
    assert outcomes[0].problems[0] == "phone '12345' is not a valid number for US"
    assert outcomes[0].problems[1].startswith("email 'x@' is not valid")
    assert outcomes[1].problems == ["no phone or email: a lead needs at least one"]


def test_row_keeps_unmapped_columns_as_custom_fields() -> None:
    outcomes = _normalise(
        [{"e": "a@example.com", "Colour": "blue", "Empty": ""}],
        {"e": "email", "Colour": "custom", "Empty": "custom"},
    )
    assert outcomes[0].as_dict()["custom_fields"] == {"Colour": "blue"}


def test_long_notes_are_clipped_with_a_warning_not_rejected() -> None:
    note = "Met at the fair. " + "Wants a demo. " * 2_000
    limits = FieldLimits(note_chars=500)
    frame = pd.DataFrame([{"p": "(415) 555-0100", "n": note}, {"p": "(415) 555-0101", "n": "short"}])
    outcomes = LeadNormaliser("US", {"p": "phone", "n": "notes"}, limits).rows(frame, range(2, 4))
    clipped, short = outcomes
    assert clipped.accepted and clipped.as_dict()["notes"] == note[:499] + "…"
    assert clipped.warnings == [f"notes cut to 500 characters (they had {len(note.strip()):,})"]
    assert short.as_dict()["notes"] == "short" and short.warnings == []


def test_custom_field_values_are_clipped_with_a_warning() -> None:
    limits = FieldLimits(custom_field_chars=10)
    frame = pd.DataFrame([{"p": "(415) 555-0100", "Colour": "ultramarine blue", "Size": "XL"}])
    mapping = {"p": "phone", "Colour": "custom", "Size": "custom"}
    [outcome] = LeadNormaliser("US", mapping, limits).rows(frame, range(2, 3))
    assert outcome.as_dict()["custom_fields"] == {"Colour": "ultramari…", "Size": "XL"}
    assert outcome.warnings == ["custom field 'Colour' cut to 10 characters (it had 16)"]


@pytest.mark.parametrize("column", ["p", "e"])
def test_an_absurdly_long_phone_or_email_is_refused_with_a_short_message(column: str) -> None:
    raw = "1" + " " * 50_000 + "x@example.com"
    row = {"p": "", "e": ""} | {column: raw}
    [outcome] = _normalise([row], {"p": "phone", "e": "email"})
    [problem] = outcome.problems
    name, kind = ("phone", "a phone number") if column == "p" else ("email", "an email address")
    assert problem.startswith(f"{name} '1 ") and "…'" in problem
    assert problem.endswith(f"is too long to be {kind} ({len(raw):,} characters)")
    assert len(problem) < 160
