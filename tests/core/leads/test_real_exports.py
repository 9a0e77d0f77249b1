"""Every real CRM, address book and list-tool export of ../shared/real_exports imported as a careful
person would: through the command line and through the dashboard's path (read, suggest, import),
with the counts and a few leads checked field by field."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.cli import app
from core.config import ROOT
from core.db import Database
from core.leads.importer import import_table, load_table, suggest_for_table
from core.models import Lead, LeadImport, Role
from core.permissions import Actor
from tests.factories import make_actor, make_tenant

# LEADFLOW_REAL_EXPORTS points elsewhere, for a checkout that is not beside them (a git worktree).
EXPORTS = Path(os.environ.get("LEADFLOW_REAL_EXPORTS", Path(ROOT).parent / "shared" / "real_exports"))
runner = CliRunner()
# Headers of columns that hold sensitive data in these files: never stored unless mapped by hand.
SENSITIVE = {"Password", "MothersMaiden", "CCNumber", "CVV2", "CCExpires", "NationalID", "DNI"}


def sms(value: str, label: str) -> dict[str, str]:
    return {"channel": "sms", "value": value, "label": label}


def email(value: str, label: str) -> dict[str, str]:
    return {"channel": "email", "value": value, "label": label}


@dataclass(frozen=True)
class Expected:
    """What a careful person gets from one file: counts, and leads keyed by (first, last name)."""

    file: str
    rows: int
    imported: int
    duplicates: int = 0
    rejected: int = 0
    phone_country: str | None = None  # the import's choice; None: the tenant's (US)
    # (first, last) -> (phone, email, company, country, alternates)
    leads: dict[tuple[str | None, str | None], tuple[Any, ...]] = field(default_factory=dict)
    # Words every warning of a row must contain: row -> words.
    warnings: dict[int, tuple[str, ...]] = field(default_factory=dict)


FILES = [
    Expected(
        "atomic_crm_contacts.csv", 500, 500,
        leads={
            # Only an "other" email; both phones are fictitious ("1-955-..." has no area code 955).
            ("Shelley", "Kerluke"): (None, "shelley_kerluke47@hotmail.com", "Gottlieb and Sons", None, []),
            ("Leah", "Boehm"): ("+14152933313", "leah93@yahoo.com", "Gottlieb and Sons", "US",
                                [sms("+19804947423", "phone_home")]),
            # "x4781" is an extension; 365 is an Ontario area code.
            ("Margaret", "Haley"): ("+13657569410", "margaret32@hotmail.com", "Schmitt and Sons", "CA",
                                    [sms("+12623977937", "phone_home")]),
        },
        warnings={2: ("phone_home", "1-955-371-0847 x371", "left out")},
    ),
    Expected(
        "atomic_crm_export.csv", 2, 2,
        leads={
            # The work phone and the work email first, the others best first.
            ("John", "Doe"): ("+16599802015", "john@doe.example", "Acme", "US",
                              [sms("+17406453807", "phone_home"), email("jdoe@caramail.com", "email_other"),
                               email("john.doe@gmail.com", "email_home")]),
            ("Jane", "Doe"): ("+16599802020", "jane@doe.example", "Acme", "US",
                              [sms("+17406473802", "phone_home")]),
        },
    ),
    Expected(
        "bitrix24_contacts.xlsx", 2, 2,
        leads={
            ("João", "Silva"): ("+5511999999999", "joao@email.com", None, "BR", []),
            ("Maria", "Costa"): ("+351912345678", "maria@abc.com", None, "PT", []),
        },
    ),
    Expected(
        # A WhatsApp list: country code without its +; all but the first are placeholders such as
        # 5511888888888, which no Brazilian mobile number is.
        "br_contatos_55.csv", 10, 1, rejected=9, phone_country="BR",
        leads={("João", "Silva"): ("+5511999999999", None, None, "BR", [])},
    ),
    Expected(
        "br_contatos_mixed.csv", 5, 5, phone_country="BR",
        leads={
            ("João", "Silva"): ("+5511987654321", None, None, "BR", []),
            ("Maria", "Santos"): ("+5511999887766", None, None, "BR", []),
        },
    ),
    Expected(
        # Row 4 repeats row 2's email with a junk phone: the same lead again.
        "chatwoot_contacts.csv", 25, 24, duplicates=1,
        leads={
            ("Clarice", "Uzzell"): ("+918484848484", "cuzzell0@mozilla.org", None, "IN", []),
            ("Sibel", "Stennine"): (None, "sstennine3@yellowbook.com", None, None, []),
        },
        warnings={4: ("+91848484848", "not a valid phone number", "left out")},
    ),
    Expected(
        "fakenamegenerator_leads.csv", 100, 100,
        leads={
            ("Ramona", "Venters"): ("+15177827343", "ramonacventers@gustr.com", "Sure Save", "US", []),
            ("Beverly", "Linton"): ("+18085723324", "beverlydlinton@superrito.com",
                                    "Handy Andy Home Improvement Center", "US", []),
        },
    ),
    Expected(
        # Google CSV, UTF-16: every phone is a placeholder word ("mobile"), four emails.
        "google_contacts_utf16.csv", 1, 1,
        leads={
            ("Firstname", "Lastname"): (None, "home@aaa.pl", "company", None,
                                        [email("work@email.pl", "E-mail 2 - Value"),
                                         email("unknown@email.com", "E-mail 3 - Value"),
                                         email("other@email.com", "E-mail 4 - Value")]),
        },
    ),
    Expected(
        "hubspot_contacts.csv", 950, 950,
        leads={
            # "(281)741-1316" beside Country "United Kingdom" reads as a UK number too: never guessed;
            # the mobile "001-728-961-6374x705" carries its country code (00 1) and is kept.
            ("Christie", "Martinez"): ("+17289616374", "vernon60@example.org", None, "GB", []),
            # "302-722-3219" beside Colombia likewise; the mobile number is US only.
            ("Miranda", "Davis"): ("+18489719347", "edwinlivingston@example.net", None, "CO", []),
            # National US numbers beside an unrelated country (Tokelau) are read as US.
            ("Laura", "Smith"): ("+18089886965", "sherry54@example.net", None, "TK",
                                 [sms("+19132495790", "Phone Number")]),
        },
        warnings={
            11: ("(281)741-1316", "+442817411316", "+12817411316"),
            107: ("302-722-3219", "+573027223219", "+13027223219"),
        },
    ),
    Expected(
        "keila_excel_semicolon.csv", 201, 201,
        leads={
            ("Joël", "Müller-Schultheiß"): (None, "foo-1@example.com", None, None, []),
            ("Eliška", "Þorláksson"): (None, "foo-2@example.com", None, None, []),
        },
    ),
    Expected(
        # Every phone is a fictitious +1 555 number; the emails carry the leads.
        "outlook_style_contacts.csv", 3, 3,
        leads={
            ("Adam", "Glacius"): (None, "adam.glacius@anycom.com", "Acme Inc.", None,
                                  [email("adam.g@example.com", "E-mail 2 Address"),
                                   email("ag@glacius.com", "E-mail 3 Address")]),
            ("Duncan", "Amey"): (None, "duncanamey@dreamt.com", None, None, []),
        },
    ),
    Expected(
        # Rows one ';' longer than the header; French placeholder phones, which no US number is.
        # Four addresses have no email and no usable phone; Wendy has three addresses.
        "prestashop_addresses.csv", 16, 9, duplicates=3, rejected=4,
        leads={
            ("Peter", "Pan"): (None, "peter.pan@prestashop.com", None, "US", []),
            ("Wendy Moira", "Darling"): (None, "wendy.moira.darling@prestashop.com", None, "US", []),
            # Finnish and German addresses: the national numbers fit the row's country only.
            ("Tinker", "Bell"): ("+358602030405", "tinker.bell@prestashop.com", "Santa Clauss Inc.", "FI",
                                 [sms("+358102030405", "Phone")]),
        },
    ),
    Expected(
        "pt_autodialer_contacts.xlsx", 20, 20, phone_country="PT",
        leads={
            ("Ana", "Silva"): ("+351912345678", None, None, "PT", []),
            ("Bruno", "Costa"): ("+351926789012", None, None, "PT", []),
        },
    ),
    Expected(
        # A trailing comma on every line; the phones are words ("phone work").
        "thunderbird_export.csv", 1, 1,
        leads={
            ("Firstname", "Lastname"): (None, "test@domain.tld", "Organization", "US",
                                        [email("next@domain.tld", "Secondary Email")]),
        },
    ),
    Expected(
        "zoho_leads.csv", 20, 20,
        leads={
            ("John", "Smith"): (None, "john.smith@example.com", "Acme Corporation", "US", []),  # +1-555-...
            ("Jane", "Doe"): ("+442071234567", "jane.doe@techstart.com", "TechStart Inc.", "GB", []),
            ("Robert", "Johnson"): ("+493012345678", "robert.j@manufacturing.com", "Global Manufacturing",
                                    "DE", []),
        },
    ),
]


def test_every_real_export_has_a_case() -> None:
    if not EXPORTS.is_dir():
        pytest.skip(f"{EXPORTS} is absent: the real exports live beside the repository")
    files = {p.name for p in EXPORTS.iterdir() if p.suffix in (".csv", ".xlsx")}
    assert files == {case.file for case in FILES}


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db, "Acme", "US"), Role.admin)


def _through_the_cli(
    case: Expected, path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "true")
    monkeypatch.setenv("LEADFLOW_MIGRATE_ON_START", "false")
    options = ["--phone-country", case.phone_country] if case.phone_country else []
    result = runner.invoke(app, ["leads", "import", str(path), "--tenant", "Acme", "--json", *options])
    assert result.exit_code == 0, result.output
    counts: dict[str, Any] = json.loads(result.stdout)
    return counts


def _through_the_dashboard(case: Expected, path: Path, db: Database, admin: Actor) -> dict[str, Any]:
    table = load_table(db, admin, path.read_bytes(), path.name)
    mapping = suggest_for_table(db, admin, table, case.phone_country).mapping
    summary = import_table(db, admin, table, file_name=path.name, sha256="0" * 64, mapping=mapping,
                           phone_country=case.phone_country)
    return summary.counts()


@pytest.mark.parametrize("way", ["cli", "dashboard"])
@pytest.mark.parametrize("case", FILES, ids=[c.file for c in FILES])
def test_a_real_export_imports_as_a_careful_person_would(
    case: Expected, way: str, db: Database, admin: Actor, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = EXPORTS / case.file
    if not path.exists():
        pytest.skip(f"{path} is absent: the real exports live beside the repository")
    if way == "cli":
        counts = _through_the_cli(case, path, database_url, monkeypatch)
    else:
        counts = _through_the_dashboard(case, path, db, admin)
    assert (counts["rows"], counts["imported"], counts["duplicates"], counts["rejected"]) == (
        case.rows, case.imported, case.duplicates, case.rejected
    )
    with db.session(tenant_id=admin.tenant_id) as session:
        leads = list(session.scalars(select(Lead)))
        found = {(lead.first_name, lead.last_name): lead for lead in leads}
        for name, expected in case.leads.items():
            lead = found[name]
            actual = (lead.phone, lead.email, lead.company, lead.country, lead.alternates)
            assert actual == expected, name
        # Nothing sensitive is stored, and every phone is E.164.
        assert all(not SENSITIVE & set(lead.custom_fields) for lead in leads)
        assert all(lead.phone is None or lead.phone.startswith("+") for lead in leads)
        assert all(lead.phone or lead.email for lead in leads)
        report = session.scalars(select(LeadImport)).one()
        for row, words in case.warnings.items():
            said = [w["warning"] for w in report.warnings if w["row"] == row]
            assert any(all(word in w for word in words) for w in said), (row, said)


def test_no_hubspot_number_is_read_outside_north_america(db: Database, admin: Actor) -> None:
    path = EXPORTS / "hubspot_contacts.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent: the real exports live beside the repository")
    table = load_table(db, admin, path.read_bytes(), path.name)
    mapping = suggest_for_table(db, admin, table).mapping
    import_table(db, admin, table, file_name=path.name, sha256="0" * 64, mapping=mapping)
    with db.session(tenant_id=admin.tenant_id) as session:
        leads = list(session.scalars(select(Lead)))
    phones = [lead.phone for lead in leads if lead.phone]
    alternates = [a["value"] for lead in leads for a in lead.alternates]
    # Every number of the file is written the North American way: none may come out elsewhere.
    assert all(p.startswith("+1") for p in phones + alternates)
    assert "+442817411316" not in phones + alternates
    assert len(phones) > 267  # the 267 numbers once refused for the rows' countries, and more
