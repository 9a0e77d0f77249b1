"""The rows of an import: which country a national number is read in, several phone and email
columns (the best kept, the others as alternates), and rows kept with one usable channel."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from core.db import Database
from core.errors import ValidationError
from core.leads.importer import import_leads
from core.leads.normalise import LeadNormaliser, RowOutcome, channel_columns
from core.leads.phones import PhoneReader, written_like_nanp
from core.models import Lead, LeadImport, Role
from core.permissions import Actor
from tests.factories import make_actor, make_tenant

AMBIGUOUS = "reads as {row} in {row_country} (the row's country) but as {home} in {home_country}"

COUNTRY_RULES = [
    # (import's phone country, row's country, raw, E.164 or None, what the message says)
    ("US", None, "(415) 555-0100", "+14155550100", None),
    ("GB", "GB", "020 7946 0018", "+442079460018", None),
    ("BR", None, "11999887766", "+5511999887766", None),
    ("BR", None, "5511999999999", "+5511999999999", None),  # the country code without its +
    ("PT", None, "912345678", "+351912345678", None),
    # Only the row's country accepts it: read there.
    ("US", "GB", "020 7946 0018", "+442079460018", None),
    ("US", "DE", "030 12345678", "+493012345678", None),
    # Only the import's country accepts it (HubSpot: US numbers beside an unrelated Country).
    ("US", "TK", "(281)741-1316", "+12817411316", None),
    ("US", "GH", "913.249.5790", "+19132495790", None),
    # Written with the country code: no country is guessed, whatever the row says.
    ("US", "US", "+44 20 7946 0018", "+442079460018", None),
    ("US", "GB", "0044 20 7946 0018", "+442079460018", None),
    # Valid in both countries as two different numbers: neither is guessed.
    (
        "US",
        "GB",
        "(281)741-1316",
        None,
        AMBIGUOUS.format(row="+442817411316", row_country="GB", home="+12817411316", home_country="US"),
    ),
    (
        "US",
        "CO",
        "302-722-3219",
        None,
        AMBIGUOUS.format(row="+573027223219", row_country="CO", home="+13027223219", home_country="US"),
    ),
    (
        "DE",
        "AT",
        "0664 1234567",
        None,
        AMBIGUOUS.format(row="+436641234567", row_country="AT", home="+496641234567", home_country="DE"),
    ),
    # Formatted the North American way but read outside North America.
    (
        "GB",
        None,
        "(281) 741-1316",
        None,
        "is written like a North American number (+12817411316) but reads as +442817411316 in GB",
    ),
    (
        "US",
        "GB",
        "12345",
        None,
        "is not a valid number for US (the import's phone country) nor for GB (the row's country)",
    ),
]


@pytest.mark.parametrize(("country", "row_country", "raw", "e164", "message"), COUNTRY_RULES)
def test_a_national_number_is_read_in_a_country_only_when_that_is_safe(
    country: str, row_country: str | None, raw: str, e164: str | None, message: str | None
) -> None:
    result = PhoneReader(country)(raw, row_country)
    assert result.e164 == e164
    if message is None:
        assert result.problem is None
    else:
        assert result.error(raw) is not None and message in result.error(raw)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(281) 741-1316", True),
        ("281-741-1316", True),
        ("1 (281) 741.1316 x12", True),
        ("2817411316", False),
        ("020 7946 0018", False),
        ("+44 20 7946 0018", False),
    ],
)
def test_north_american_formatting_is_recognised(raw: str, expected: bool) -> None:
    assert written_like_nanp(raw) is expected


def _rows(rows: list[dict[str, str]], mapping: dict[str, str], country: str = "US") -> list[RowOutcome]:
    frame = pd.DataFrame(rows).fillna("")
    return LeadNormaliser(country, mapping).rows(frame, range(2, 2 + len(frame)))


def test_the_import_country_of_a_row_with_an_ambiguous_number_leaves_it_out_with_a_warning() -> None:
    [outcome] = _rows(
        [{"p": "(281)741-1316", "e": "a@example.com", "c": "United Kingdom"}],
        {"p": "phone", "e": "email", "c": "country"},
    )
    assert outcome.accepted
    assert (outcome.as_dict()["phone"], outcome.as_dict()["email"]) == (None, "a@example.com")
    [warning] = outcome.warnings
    assert "+442817411316" in warning and "+12817411316" in warning and warning.endswith("; left out")


@pytest.mark.parametrize(
    ("mapping", "order"),
    [
        ({"Work": "phone", "Home": "phone", "Mobile": "phone"}, ["Mobile", "Work", "Home"]),
        ({"Tel 1": "phone:home", "Tel 2": "phone:mobile", "Tel 3": "phone"}, ["Tel 2", "Tel 3", "Tel 1"]),
        (
            {"Phone": "phone", "Business Phone": "phone", "Handy": "phone"},
            ["Handy", "Phone", "Business Phone"],
        ),
        (
            {"email_home": "email", "email_other": "email", "email_work": "email"},
            ["email_work", "email_other", "email_home"],
        ),
        (
            {"E-mail 1": "email:home", "E-mail 2": "email:work", "Mail": "email"},
            ["E-mail 2", "Mail", "E-mail 1"],
        ),
    ],
)
def test_phone_and_email_columns_are_ranked_by_kind(mapping: dict[str, str], order: list[str]) -> None:
    channel = "email" if any(t.startswith("email") for t in mapping.values()) else "phone"
    assert channel_columns(mapping, channel) == order


SEVERAL = {
    "Work": "phone:work",
    "Mobile": "phone",
    "Home": "phone:home",
    "Email 1": "email:home",
    "Email 2": "email:work",
}


def test_the_best_phone_and_email_are_kept_and_the_others_become_alternates() -> None:
    [outcome] = _rows(
        [
            {
                "Work": "(415) 555-0100",
                "Mobile": "(415) 555-0101",
                "Home": "415.555.0101",
                "Email 1": "Ann@Home.example",
                "Email 2": "ann@work.example",
            }
        ],
        SEVERAL,
    )
    lead = outcome.as_dict()
    assert (lead["phone"], lead["email"]) == ("+14155550101", "ann@work.example")
    # The home number is the mobile one again: kept once.
    assert lead["alternates"] == [
        {"channel": "sms", "value": "+14155550100", "label": "Work"},
        {"channel": "email", "value": "ann@home.example", "label": "Email 1"},
    ]
    assert outcome.warnings == []


def test_a_junk_column_is_left_out_and_the_next_best_is_kept() -> None:
    [outcome] = _rows(
        [{"Work": "(415) 555-0100", "Mobile": "mobile", "Home": "", "Email 1": "", "Email 2": "x@"}], SEVERAL
    )
    lead = outcome.as_dict()
    assert (lead["phone"], lead["email"], lead["alternates"]) == ("+14155550100", None, None)
    assert outcome.warnings == [
        "column 'Mobile': phone 'mobile' is not a phone number; left out",
        "column 'Email 2': email 'x@' is not valid: There must be something after the @-sign.; left out",
    ]


PARTIAL = [
    # (phone, email, kept, phone kept, email kept, the first warning or reason)
    (
        "12345",
        "a@example.com",
        True,
        None,
        "a@example.com",
        "phone '12345' is not a valid number for US; left out",
    ),
    ("(415) 555-0100", "not-an-email", True, "+14155550100", None, "email 'not-an-email' is not valid"),
    ("12345", "not-an-email", False, None, None, "phone '12345' is not a valid number for US"),
    ("", "", False, None, None, "no phone or email: a lead needs at least one"),
]


@pytest.mark.parametrize(("phone", "email", "kept", "e164", "address", "message"), PARTIAL)
def test_a_row_is_kept_while_one_channel_remains(
    phone: str, email: str, kept: bool, e164: str | None, address: str | None, message: str
) -> None:
    [outcome] = _rows([{"p": phone, "e": email, "n": "a note"}], {"p": "phone", "e": "email", "n": "notes"})
    assert outcome.accepted is kept
    assert (outcome.as_dict()["phone"], outcome.as_dict()["email"]) == (e164, address)
    said = outcome.warnings if kept else outcome.problems
    assert said[0].startswith(message)
    if kept:
        assert outcome.problems == []


# --- through the import -------------------------------------------------------------------

CONTACTS = (
    b"Name,Work Phone,Mobile Phone,Work Email,Home Email,Country\n"
    b"Ann Lee,(415) 555-0100,(415) 555-0101,ann@work.example,ann@home.example,US\n"
    b"Bob Day,(281)741-1316,,bob@work.example,,United Kingdom\n"
    b"Cy Orr,junk,,,,\n"
)
CONTACTS_MAPPING = {
    "Name": "full_name",
    "Work Phone": "phone",
    "Mobile Phone": "phone",
    "Work Email": "email",
    "Home Email": "email",
    "Country": "country",
}


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db), Role.admin)


def _import(
    db: Database,
    admin: Actor,
    data: bytes = CONTACTS,
    mapping: dict[str, str] = CONTACTS_MAPPING,
    **options: Any,
) -> tuple[Any, dict[str, Lead], Any]:
    summary = import_leads(db, admin, file_name="contacts.csv", data=data, mapping=mapping, **options)
    with db.session(tenant_id=admin.tenant_id) as session:
        leads = {lead.first_name or "": lead for lead in session.scalars(select(Lead))}
        stored = session.get(LeadImport, summary.import_id)
        session.expunge_all()
    return summary, leads, stored


def test_the_import_stores_alternates_and_reports_rejected_and_kept_rows_apart(
    db: Database, admin: Actor
) -> None:
    summary, leads, stored = _import(db, admin)
    assert (summary.imported, summary.rejected, summary.with_warnings) == (2, 1, 1)
    ann = leads["Ann"]
    assert (ann.phone, ann.email) == ("+14155550101", "ann@work.example")
    assert ann.alternates == [
        {"channel": "sms", "value": "+14155550100", "label": "Work Phone"},
        {"channel": "email", "value": "ann@home.example", "label": "Home Email"},
    ]
    bob = leads["Bob"]
    assert (bob.phone, bob.email, bob.country, bob.alternates) == (None, "bob@work.example", "GB", [])
    assert [(w["row"], "+442817411316" in w["warning"]) for w in summary.warnings] == [(3, True)]
    assert [(r["row"], r["reason"]) for r in summary.rejects] == [
        (4, "column 'Work Phone': phone 'junk' is not a phone number")
    ]
    assert stored.warnings == summary.warnings and stored.rejects == summary.rejects


def test_the_phone_country_of_the_import_reads_national_numbers(db: Database, admin: Actor) -> None:
    data = b"Name,Phone\nAnn Lee,020 7946 0018\n"
    mapping = {"Name": "full_name", "Phone": "phone"}
    summary, leads, _stored = _import(db, admin, data, mapping, phone_country="GB")
    assert summary.imported == 1 and leads["Ann"].phone == "+442079460018"
    with pytest.raises(ValidationError, match="phone country 'XX' is not a country code"):
        _import(db, admin, data, mapping, phone_country="XX")


@pytest.mark.parametrize("policy", ["fill", "overwrite"])
def test_a_second_import_adds_new_alternates_to_a_known_lead(db: Database, admin: Actor, policy: str) -> None:
    first = b"Name,Mobile Phone,Work Email\nAnn Lee,(415) 555-0101,ann@work.example\n"
    import_leads(
        db,
        admin,
        file_name="a.csv",
        data=first,
        mapping={"Name": "full_name", "Mobile Phone": "phone", "Work Email": "email"},
    )
    again = import_leads(
        db, admin, file_name="b.csv", data=CONTACTS, mapping=CONTACTS_MAPPING, on_duplicate=policy
    )
    assert again.updated == 1
    with db.session(tenant_id=admin.tenant_id) as session:
        ann = session.scalars(select(Lead).where(Lead.phone == "+14155550101")).one()
        assert ann.alternates == [
            {"channel": "sms", "value": "+14155550100", "label": "Work Phone"},
            {"channel": "email", "value": "ann@home.example", "label": "Home Email"},
        ]
