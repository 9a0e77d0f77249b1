"""Content detection and the suggestion it feeds: columns whose headers say nothing are proposed
from their values with evidence and a confidence; honorifics are salutations; sensitive values
stay out."""

from __future__ import annotations

import pytest

from core.leads.detect import ContentReader, luhn_valid
from core.leads.mapping import CUSTOM, IGNORE, SALUTATION, ColumnSuggestion, suggest_columns

EMAILS = [f"person{i}@example.com" for i in range(23)] + ["n/a", "unknown"]  # 92% emails
PHONES = ["(415) 555-0100", "+1 212 555 0199", "+44 20 7946 0018", "415.555.0123", "+49 30 901820"]
URLS = ["https://acme.com/", "www.example.org", "globex.de", "initech.io", "http://umbrella.co.uk/about"]
COUNTRY_NAMES = ["United States", "Germany", "France", "Brasil", "Italia"]
ISO_CODES = ["US", "DE", "FR", "BR", "NL"]
US_STATES = ["MI", "HI", "MD", "NY", "TX", "CA", "OH", "GA"]
CARDS = ["4539165193923664", "5275723855513432", "4556 0978 0304 6487", "3714-496353-98431"]
SSNS = ["382-10-4362", "575-90-4978", "218-84-3308"]
HONORIFICS = ["Mr.", "Ms.", "Mrs.", "Dr.", "Herr", "Frau", "Mme", "M.", "Sra.", "Sig.ra", "Dhr."]
JOB_TITLES = ["Sales Executive", "Designer", "CTO", "Account manager"]


def _one(header: str, values: list[str]) -> ColumnSuggestion:
    """The suggestion for `header` in a file that also has a named email column."""
    columns = suggest_columns(["Contact email", header], {"Contact email": [], header: values})
    return columns[1]


@pytest.mark.parametrize(
    ("values", "what"),
    [
        (EMAILS, "email"),
        (PHONES, "phone"),
        (URLS, "website"),
        (COUNTRY_NAMES, "country"),
        (ISO_CODES, "country_code"),
        (CARDS, "card"),
        (SSNS, "national_id"),
        (HONORIFICS, "honorific"),
    ],
)
def test_the_content_of_a_column_is_recognised(values: list[str], what: str) -> None:
    found = ContentReader("US").mostly(values)
    assert found is not None
    assert found.what == what


@pytest.mark.parametrize(
    "values",
    [
        US_STATES,  # many are also ISO country codes, but together they are states
        JOB_TITLES,
        ["101", "102", "103"],
        ["5000000", "2500000", "10000000"],  # revenue, not phone numbers
        ["2024-08-18", "2022-05-12"],
        ["https://www.linkedin.com/in/johndoe", "https://www.linkedin.com/in/janedoe"],
        ["Wendy.Moira.Darling", "Peter.Pan"],
        # Mixed: a third each, so none is "mostly"
        ["a@example.com", "b@example.com", "(415) 555-0100", "+1 212 555 0199", "acme.com", "globex.de"],
    ],
)
def test_content_that_is_not_mostly_one_thing_proposes_nothing(values: list[str]) -> None:
    assert ContentReader("US").mostly(values) is None


def test_luhn() -> None:
    assert luhn_valid("4539165193923664")
    assert not luhn_valid("4539165193923665")


def test_a_column_of_emails_under_a_meaningless_header_is_proposed_with_its_evidence() -> None:
    columns = suggest_columns(["Name", "Field 7"], {"Name": ["Ada"], "Field 7": EMAILS})
    assert columns[1].target == "email"
    assert columns[1].evidence == "92% of values are valid emails"
    assert 0.8 < (columns[1].confidence or 0) < 0.9


@pytest.mark.parametrize(
    ("values", "target", "evidence"),
    [
        (PHONES, "phone", "100% of values are valid phone numbers"),
        (URLS, "website", "100% of values are web addresses"),
        (COUNTRY_NAMES, "country", "100% of values are country names"),
        (ISO_CODES, "country", "100% of values are ISO country codes"),
        (HONORIFICS, SALUTATION, "100% of values are honorifics such as Mr. or Ms."),
        (US_STATES, CUSTOM, "no lead field matches this header"),
    ],
)
def test_content_decides_where_the_header_says_nothing(values: list[str], target: str, evidence: str) -> None:
    column = _one("Column B", values)
    assert (column.target, column.evidence) == (target, evidence)


def test_a_second_column_of_emails_is_not_taken_for_the_leads_email() -> None:
    # HubSpot's 'Contact Owner' holds the sales rep's address, beside the lead's own 'Email'.
    columns = suggest_columns(["Email", "Contact Owner"], {"Email": EMAILS, "Contact Owner": EMAILS})
    assert [c.target for c in columns] == ["email", CUSTOM]
    assert "'Email' already fills email" in columns[1].evidence


def test_a_header_that_names_a_field_wins_over_a_guess_from_content() -> None:
    columns = suggest_columns(["Links", "Web"], {"Links": URLS, "Web": ["n/a"]})
    assert [c.target for c in columns] == [CUSTOM, "website"]


def test_a_named_column_with_values_goes_before_a_named_empty_one() -> None:
    # Google: an empty 'Occupation' early on, the job titles under 'Organization 1 - Title'.
    columns = suggest_columns(
        ["Occupation", "Organization 1 - Title"], {"Occupation": [], "Organization 1 - Title": ["CTO"]}
    )
    assert [c.target for c in columns] == [CUSTOM, "title"]


@pytest.mark.parametrize("header", ["Title", "Titel", "Titre", "Título", "Titolo"])
def test_a_title_column_of_honorifics_is_a_salutation_not_a_job_title(header: str) -> None:
    column = _one(header, HONORIFICS)
    assert column.target == SALUTATION
    assert column.evidence == "100% of values are honorifics such as Mr. or Ms., not job titles"
    assert _one(header, JOB_TITLES).target == "title"


def test_header_and_content_agreeing_give_a_high_confidence_and_disagreeing_a_low_one() -> None:
    agree = _one("Phone", PHONES)
    assert agree.target == "phone" and agree.confidence == 0.99
    assert agree.evidence == "the header names phone; 100% of values are valid phone numbers"
    disagree = _one("Phone", ["n/a", "ask"])
    assert disagree.target == "phone" and disagree.confidence == 0.6
    assert disagree.evidence == "the header names phone, but no value is a valid phone"


@pytest.mark.parametrize(("values", "what"), [(CARDS, "payment card numbers"), (SSNS, "identity numbers")])
def test_sensitive_content_is_left_out_whatever_the_header(values: list[str], what: str) -> None:
    column = _one("Reference", values)
    assert column.target == IGNORE and column.sensitive
    assert what in (column.left_out or "")
    assert "not stored unless you map it yourself" in (column.left_out or "")


def test_phone_numbers_that_happen_to_pass_luhn_are_not_cards() -> None:
    numbers = [f"+1 415 555 {i:04d}" for i in range(100, 200)]
    assert _one("Mobile", numbers).target == "phone:mobile"


def test_a_name_column_beside_a_last_name_column_holds_first_names() -> None:
    assert [c.target for c in suggest_columns(["name", "last_name", "email"])] == [
        "first_name", "last_name", "email",
    ]
    assert [c.target for c in suggest_columns(["Vorname", "Name", "E-Mail"])] == [
        "first_name", "last_name", "email",
    ]
    assert [c.target for c in suggest_columns(["Nome", "Telefone"])] == ["full_name", "phone"]
