"""`leads import|export` and `suppressions import` on the command line, JSON output included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.cli import app
from core.db import Database
from core.models import Lead, LeadImport
from tests.factories import make_tenant

runner = CliRunner()
LEADS = (
    "Name,Mobile,E-mail,Colour\n"
    "Ada Lovelace,(415) 555-0100,ada@example.com,blue\n"
    "Bob Smith,+1 415 555 0101,bob@example.org,\n"
    "Carl Jones,12345,,\n"
    "Ada again,+14155550100,,\n"
)


@pytest.fixture
def cli_env(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "true")
    monkeypatch.setenv("LEADFLOW_MIGRATE_ON_START", "false")
    make_tenant(db, "Acme")
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    return path


def test_import_prints_exactly_the_counts_as_json(cli_env: Path) -> None:
    result = runner.invoke(app, ["leads", "import", str(cli_env), "--tenant", "Acme", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert list(counts) == [
        "import_id",
        "rows",
        "imported",
        "updated",
        "duplicates",
        "rejected",
        "with_warnings",
    ]
    assert {k: v for k, v in counts.items() if k != "import_id"} == {
        "rows": 4,
        "imported": 2,
        "updated": 0,
        "duplicates": 1,
        "rejected": 1,
        "with_warnings": 0,
    }
    again = json.loads(
        runner.invoke(
            app, ["leads", "import", str(cli_env), "--tenant", "Acme", "--json", "--on-duplicate", "fill"]
        ).stdout
    )
    assert (again["imported"], again["duplicates"]) == (0, 3)


def test_import_with_a_mapping_file_and_the_text_report(cli_env: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"Mobile": "phone", "E-mail": "ignore", "Colour": "notes"}))
    result = runner.invoke(
        app, ["leads", "import", str(cli_env), "--tenant", "Acme", "--mapping", str(mapping), "--tag", "cli"]
    )
    assert result.exit_code == 0, result.output
    assert "2 imported" in result.stdout
    assert "row 4: phone '12345' is not a valid number for US" in result.stdout


def _import_with_mapping(path: Path, tmp_path: Path, mapping: dict[str, str]) -> str:
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(mapping))
    result = runner.invoke(
        app, ["leads", "import", str(path), "--tenant", "Acme", "--mapping", str(mapping_file)]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _leads_by_email(db: Database) -> dict[str, Any]:
    with db.session(system=True) as session:
        return {lead.email: lead for lead in session.scalars(select(Lead))}


def test_a_mapping_file_corrects_only_the_columns_it_names(
    db: Database, cli_env: Path, tmp_path: Path
) -> None:
    # Only 'Colour' is named: Name, Mobile and E-mail keep their suggested fields.
    _import_with_mapping(cli_env, tmp_path, {"Colour": "notes"})
    leads = _leads_by_email(db)
    ada = leads["ada@example.com"]
    assert (ada.first_name, ada.last_name, ada.phone) == ("Ada", "Lovelace", "+14155550100")
    assert ada.notes == "blue"
    assert ada.custom_fields == {}


def test_a_mapping_file_corrects_the_remembered_mapping(db: Database, cli_env: Path, tmp_path: Path) -> None:
    # The first import remembers Colour -> notes for these headers; the second names only E-mail.
    _import_with_mapping(cli_env, tmp_path, {"Colour": "notes"})
    other = tmp_path / "other.csv"
    other.write_text("Name,Mobile,E-mail,Colour\nDee Ray,+1 415 555 0199,dee@example.com,green\n")
    _import_with_mapping(other, tmp_path, {"E-mail": "ignore"})
    dee = next(lead for lead in _leads_by_email(db).values() if lead.phone == "+14155550199")
    assert (dee.email, dee.notes, dee.first_name) == (None, "green", "Dee")


def test_sensitive_columns_stay_out_unless_the_mapping_file_names_them(
    db: Database, cli_env: Path, tmp_path: Path
) -> None:
    data = tmp_path / "cards.csv"
    data.write_text(
        "Email,CCNumber,Password,Notes\n"
        "ann@example.com,4539165193923664,Choo0ohvo,first\n"
        "ben@example.com,5275723855513432,Cheeph8oh,second\n"
    )
    output = _import_with_mapping(data, tmp_path, {"Notes": "notes"})
    assert "2 columns were not imported, since sensitive data" in output
    assert "'CCNumber', 'Password'" in output
    assert _leads_by_email(db)["ann@example.com"].custom_fields == {}
    again = tmp_path / "cards2.csv"
    again.write_text("Email,CCNumber,Password\ncid@example.com,4556097803046487,et2MeijahS\n")
    _import_with_mapping(again, tmp_path, {"Password": "custom"})
    assert _leads_by_email(db)["cid@example.com"].custom_fields == {"Password": "et2MeijahS"}


UK_FILE = (
    "Name,Phone,Email,Country\n"
    "Ann Lee,020 7946 0018,ann@example.com,\n"  # national UK: read in the chosen phone country
    "Bob Day,(281) 741-1316,bob@example.com,\n"  # written the North American way: not read as UK
    "Cy Orr,12,,\n"  # no channel left: rejected
)


def test_import_reads_national_numbers_in_the_chosen_phone_country(cli_env: Path, tmp_path: Path) -> None:
    path = tmp_path / "uk.csv"
    path.write_text(UK_FILE, encoding="utf-8")
    result = runner.invoke(app, ["leads", "import", str(path), "--tenant", "Acme", "--phone-country", "gb"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("2 imported, 0 updated, 0 duplicates, 1 rejected, 1 imported with warnings")
    assert lines[1:3] == [
        "1 rejected row (not imported):",
        "  row 4: phone '12' is not a valid number for GB",
    ]
    assert lines[3].startswith("1 warning on imported rows")
    assert lines[4].startswith(
        "  row 3: phone '(281) 741-1316' is written like a North American number (+12817411316)"
    )
    assert lines[4].endswith("; left out")
    leads = json.loads(
        runner.invoke(
            app, ["leads", "import", str(path), "--tenant", "Acme", "--json", "--on-duplicate", "skip"]
        ).stdout
    )
    assert (leads["imported"], leads["duplicates"]) == (0, 2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tenant", "Nobody"], "no tenant named 'Nobody'"),
        (["--tenant", "Acme", "--on-duplicate", "merge"], "use skip, fill or overwrite"),
        (["--tenant", "Acme", "--phone-country", "Narnia"], "phone country 'Narnia' is not a country code"),
    ],
)
def test_import_errors_are_one_line_and_non_zero(cli_env: Path, arguments: list[str], message: str) -> None:
    result = runner.invoke(app, ["leads", "import", str(cli_env), *arguments])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_writes_the_leads(cli_env: Path, tmp_path: Path, suffix: str) -> None:
    runner.invoke(app, ["leads", "import", str(cli_env), "--tenant", "Acme"])
    out = tmp_path / f"out.{suffix}"
    result = runner.invoke(app, ["leads", "export", "--tenant", "Acme", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["leads"] == 2
    assert out.stat().st_size > 0
    if suffix == "csv":
        assert "'+14155550100" in out.read_text(encoding="utf-8-sig")


def test_export_refuses_an_unknown_format(cli_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["leads", "export", "--tenant", "Acme", "--out", str(tmp_path / "x.pdf")])
    assert result.exit_code == 1
    assert "must end in .csv or .xlsx" in result.stderr


def test_suppressions_import(cli_env: Path, tmp_path: Path) -> None:
    stop = tmp_path / "stop.csv"
    stop.write_text("phone\n(415) 555-0100\n123\n")
    result = runner.invoke(
        app,
        [
            "suppressions",
            "import",
            str(stop),
            "--tenant",
            "Acme",
            "--channel",
            "sms",
            "--reason",
            "stop",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"rows": 2, "added": 1, "already": 0, "rejected": 1}


def test_import_reports_what_it_changed_in_imported_rows(
    cli_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_IMPORT_MAX_NOTE_CHARS", "10")
    path = tmp_path / "notes.csv"
    path.write_bytes(b"Phone,Notes\n4155550100,call back in May please\n4155550101,ok\x00\n")
    result = runner.invoke(app, ["leads", "import", str(path), "--tenant", "Acme"])
    assert result.exit_code == 0, result.output
    assert "2 imported" in result.stdout
    assert "2 warnings on imported rows:" in result.stdout
    assert "row 2: notes cut to 10 characters (they had 23)" in result.stdout
    assert "row 3: column 'Notes': removed 1 control character (such as a NUL byte)" in result.stdout


def test_import_of_a_file_without_leads_is_refused_and_records_nothing(
    cli_env: Path, db: Database
) -> None:
    cli_env.write_text("Name,Mobile,E-mail\n", encoding="utf-8")
    result = runner.invoke(app, ["leads", "import", str(cli_env), "--tenant", "Acme"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: 'leads.csv' has a header row (row 1) but no leads below it: nothing to import; "
        "add the leads under the header row and upload it again\n"
    )
    with db.session(system=True) as session:
        assert session.scalar(select(func.count(LeadImport.id))) == 0
