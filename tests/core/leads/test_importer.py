"""The import: dedup in and across files, duplicate policies, rejects, atomicity and tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import Database
from core.errors import PermissionDenied, ValidationError
from core.leads import importer, saving
from core.leads.importer import ImportSummary, import_leads, preview_rows
from core.leads.readers import read_table
from core.models import AuditLog, Lead, LeadImport, LeadTag, Role
from core.permissions import Actor
from tests.factories import make_actor, make_tenant

HEADER = "First Name,Last Name,Phone,Email,Company,Title,Website,Colour\n"
FILE = (
    HEADER
    + "Ada,Lovelace,(415) 555-0100,ada@example.com,Engines,,https://www.engines.example.com/,blue\n"
    + "Bob,Smith,+1 415 555 0101,bob@example.org,Acme,CTO,,\n"
    + "Carl,Jones,12345,carl@example.com,,,,\n"
    + "Ada,L.,+1 415 555 0100,,,,,\n"  # the same phone in another format
    + "Bobby,,,BOB@Example.org,,,,\n"  # the same email in capitals
    + "Dora,,,dora@,,,,\n"
).encode()


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db), Role.admin)


def _import(db: Database, actor: Actor, data: bytes = FILE, **options: Any) -> ImportSummary:
    return import_leads(db, actor, file_name="leads.csv", data=data, **options)


def _leads(db: Database, actor: Actor) -> dict[str, Lead]:
    with db.session(tenant_id=actor.tenant_id) as session:
        return {lead.phone or lead.email: lead for lead in session.scalars(select(Lead))}


def test_import_dedups_inside_the_file_and_reports_rejects(db: Database, admin: Actor) -> None:
    summary = _import(db, admin, tags=["Fair 2026"])
    assert summary.counts() == {
        "import_id": summary.import_id,
        "rows": 6,
        "imported": 3,
        "updated": 0,
        "duplicates": 2,
        "rejected": 1,
        "with_warnings": 1,
    }
    assert [(r["row"], r["reason"]) for r in summary.rejects] == [
        (7, "email 'dora@' is not valid: There must be something after the @-sign."),
    ]
    assert summary.rejects[0]["values"]["First Name"] == "Dora"
    # Carl's phone is junk but his email is fine: he is kept, without the phone, with a warning.
    assert {"row": 4, "warning": "phone '12345' is not a valid number for US; left out"} in summary.warnings
    leads = _leads(db, admin)
    assert leads["carl@example.com"].phone is None
    ada = leads["+14155550100"]
    assert (ada.first_name, ada.email, ada.website, ada.time_zone, ada.country) == (
        "Ada",
        "ada@example.com",
        "engines.example.com",
        "America/Los_Angeles",
        "US",
    )
    assert ada.custom_fields == {"Colour": "blue"}
    assert ada.import_id == summary.import_id
    assert [t.tag for t in ada.tags] == ["fair 2026"]
    with db.session(tenant_id=admin.tenant_id) as session:
        stored = session.get(LeadImport, summary.import_id)
        assert stored is not None
        assert (stored.status, stored.rows_total, stored.rows_rejected) == ("completed", 6, 1)
        assert stored.rejects == summary.rejects
        assert stored.warnings == summary.warnings


def test_importing_the_same_file_twice_adds_nothing(db: Database, admin: Actor) -> None:
    _import(db, admin)
    for policy in ("skip", "fill", "overwrite"):
        again = _import(db, admin, on_duplicate=policy)
        assert (again.imported, again.updated, again.duplicates, again.rejected) == (0, 0, 5, 1)
    with db.session(tenant_id=admin.tenant_id) as session:
        assert session.scalar(select(func.count(Lead.id))) == 3


UPDATE = (HEADER + "Ada,King,4155550100,,Analytical Engines,Countess,,green\n").encode()


@pytest.mark.parametrize(
    ("policy", "last_name", "company", "title", "colour", "updated"),
    [
        ("skip", "Lovelace", "Engines", None, "blue", 0),
        ("fill", "Lovelace", "Engines", "Countess", "blue", 1),
        ("overwrite", "King", "Analytical Engines", "Countess", "green", 1),
    ],
)
def test_each_duplicate_policy(
    db: Database,
    admin: Actor,
    policy: str,
    last_name: str,
    company: str,
    title: str | None,
    colour: str,
    updated: int,
) -> None:
    _import(db, admin)
    summary = _import(db, admin, UPDATE, on_duplicate=policy)
    assert (summary.imported, summary.updated, summary.duplicates) == (0, updated, 1 - updated)
    ada = _leads(db, admin)["+14155550100"]
    assert (ada.last_name, ada.company, ada.title, ada.custom_fields["Colour"]) == (
        last_name,
        company,
        title,
        colour,
    )
    assert ada.email == "ada@example.com"  # an empty cell never erases a value


def test_a_row_matching_two_different_leads_changes_neither(db: Database, admin: Actor) -> None:
    _import(db, admin)
    clash = (HEADER + "X,Y,(415) 555-0100,bob@example.org,Clash,,,\n").encode()
    summary = _import(db, admin, clash, on_duplicate="overwrite")
    assert (summary.updated, summary.duplicates) == (0, 1)
    assert _leads(db, admin)["+14155550100"].company == "Engines"


def test_a_failure_midway_leaves_no_rows(db: Database, admin: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "SAVE_CHUNK", 1)
    calls = {"n": 0}
    real = importer.save_chunk

    def failing(*args: Any, **kwargs: Any) -> tuple[int, int, int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "save_chunk", failing)
    with pytest.raises(RuntimeError, match="injected"):
        _import(db, admin)
    assert calls["n"] == 2
    with db.session(tenant_id=admin.tenant_id) as session:
        assert session.scalar(select(func.count(Lead.id))) == 0
        assert session.scalar(select(func.count(LeadTag.lead_id))) == 0
        failed = session.scalars(select(LeadImport)).all()
        assert [(i.status, i.rows_imported) for i in failed] == [("failed", 0)]
        assert "injected" in (failed[0].error or "")


def test_one_tenant_never_dedups_against_another(db: Database, admin: Actor) -> None:
    other = make_actor(db, make_tenant(db, "Other"), Role.admin)
    _import(db, admin)
    summary = _import(db, other)
    assert (summary.imported, summary.duplicates) == (3, 2)
    assert set(_leads(db, other)) == set(_leads(db, admin))


def test_progress_is_reported_up_to_done(db: Database, admin: Actor) -> None:
    seen: list[tuple[float, str]] = []
    _import(db, admin, progress=lambda fraction, text: seen.append((fraction, text)))
    fractions = [f for f, _t in seen]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert any(t.startswith("Checked") for _f, t in seen)
    assert any(t.startswith("Saved") for _f, t in seen)


def test_the_mapping_is_saved_and_a_given_mapping_is_used(db: Database, admin: Actor) -> None:
    data = b"Tel,Mail,Shoe\n4155550100,a@example.com,42\n"
    first = _import(db, admin, data, mapping={"Tel": "phone", "Mail": "email", "Shoe": "ignore"})
    assert first.imported == 1
    with db.session(tenant_id=admin.tenant_id) as session:
        assert session.scalars(select(Lead.custom_fields)).one() == {}
    from core.leads.mapping import find_saved_mapping

    assert find_saved_mapping(db, admin, ["Tel", "Mail", "Shoe"]) == {
        "Tel": "phone",
        "Mail": "email",
        "Shoe": "ignore",
    }


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"on_duplicate": "merge"}, ValidationError, "use skip, fill or overwrite"),
        ({"mapping": {"Phone": "fax"}}, ValidationError, "not a lead field"),
    ],
)
def test_bad_options_are_refused(
    db: Database, admin: Actor, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _import(db, admin, **options)


def test_only_lead_managers_may_import(db: Database, admin: Actor) -> None:
    manager = make_actor(db, admin.tenant_id, Role.manager)
    with pytest.raises(PermissionDenied):
        _import(db, manager)


def test_preview_validates_the_first_rows(db: Database, admin: Actor) -> None:
    table = read_table(FILE, "leads.csv")
    mapping = importer.suggest_for_table(db, admin, table).mapping
    preview = preview_rows(db, admin, table, mapping, limit=4)
    assert [(p.row, p.status) for p in preview] == [(2, "ok"), (3, "ok"), (4, "warning"), (5, "ok")]
    assert preview[0].values["phone"] == "+14155550100"
    assert preview[2].message == "phone '12345' is not a valid number for US; left out"
    assert (preview[2].values["phone"], preview[2].values["email"]) == (None, "carl@example.com")


def test_the_xlsx_sample_and_the_csv_sample_import_alike(db: Database, admin: Actor) -> None:
    from core.config import DATA_DIR

    csv_summary = import_leads(
        db, admin, file_name="sample_leads.csv", data=(DATA_DIR / "sample_leads.csv").read_bytes()
    )
    assert csv_summary.imported > 180
    assert csv_summary.rejected == 3  # and one row kept without its junk phone
    xlsx_summary = import_leads(
        db, admin, file_name="sample_leads.xlsx", data=(DATA_DIR / "sample_leads.xlsx").read_bytes()
    )
    assert (xlsx_summary.imported, xlsx_summary.rejected) == (0, 3)
    assert xlsx_summary.duplicates == csv_summary.imported + csv_summary.duplicates
    # The same bad rows, numbered as each spreadsheet shows them (two rows above the XLSX header).
    assert [r["row"] for r in xlsx_summary.rejects] == [r["row"] + 2 for r in csv_summary.rejects]


@pytest.mark.parametrize("few_leads", [0, 50_000], ids=["key-look-ups", "whole-tenant-read"])
def test_known_leads_are_found_however_they_are_read(
    db: Database, admin: Actor, monkeypatch: pytest.MonkeyPatch, few_leads: int
) -> None:
    monkeypatch.setattr(saving, "FEW_LEADS", few_leads)
    _import(db, admin)
    again = _import(db, admin, UPDATE, on_duplicate="fill")
    assert (again.imported, again.updated, again.duplicates) == (0, 1, 0)
    assert _leads(db, admin)["+14155550100"].title == "Countess"


@pytest.mark.parametrize("save_chunk", [1, 10_000])
def test_a_later_row_sees_what_an_earlier_row_changed(
    db: Database, admin: Actor, monkeypatch: pytest.MonkeyPatch, save_chunk: int
) -> None:
    monkeypatch.setattr(importer, "SAVE_CHUNK", save_chunk)
    _import(db, admin)
    # Row 2 moves Ada to a new address; row 3 then carries her old one, which is free again.
    moves = (
        HEADER + "Ada,,(415) 555-0100,ada@new.example.com,,,,\n" + "Eve,,(415) 555-0199,ada@example.com,,,,\n"
    ).encode()
    summary = _import(db, admin, moves, on_duplicate="overwrite")
    assert (summary.imported, summary.updated, summary.duplicates) == (1, 1, 0)
    leads = _leads(db, admin)
    assert leads["+14155550100"].email == "ada@new.example.com"
    assert leads["+14155550199"].email == "ada@example.com"


def test_bulk_written_leads_get_fresh_ids_and_their_tags(db: Database, admin: Actor) -> None:
    other = make_actor(db, make_tenant(db, "Other"), Role.admin)
    _import(db, other, tags=["first"])
    summary = _import(db, admin, tags=["VIP"])
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        # The ids handed out in bulk are behind the table's own counter: the ORM's next is free.
        session.add(Lead(tenant_id=admin.tenant_id, phone="+14155550177"))
    with db.session(tenant_id=admin.tenant_id) as session:
        key = func.coalesce(Lead.phone, Lead.email)
        tagged = session.execute(select(key, LeadTag.tag).join(LeadTag.lead)).all()
        expected = [("+14155550100", "vip"), ("+14155550101", "vip"), ("carl@example.com", "vip")]
        assert sorted(tagged, key=str) == sorted(expected, key=str)
        assert session.scalar(select(func.count(Lead.id)).where(Lead.import_id == summary.import_id)) == 3


def test_the_bulk_writer_refuses_another_tenants_session(db: Database, admin: Actor) -> None:
    from datetime import UTC, datetime

    from core.db import TenantScopeError

    other = make_tenant(db, "Other")
    with db.session(tenant_id=other) as session, pytest.raises(TenantScopeError):
        saving.LeadWriter(session, admin.tenant_id, 1, datetime.now(UTC))


# --- bounded inputs -----------------------------------------------------------------------


def _settings_with(db: Database, **limits: Any) -> None:
    for name, value in limits.items():
        setattr(db.settings, name, value)


def test_a_nul_byte_deep_in_a_csv_is_stripped_and_reported_not_a_database_error(
    db: Database, admin: Actor
) -> None:
    lines = ["First Name,Phone,Email,Notes"]
    row = 0
    while sum(len(line) + 1 for line in lines) < 100_000:
        lines.append(f"Lead{row},+1415555{row:04d},lead{row}@example.com,fine")
        row += 1
    lines.append("Nu\x00ll,+14155559998,nul@example.com,a\x00b\x01c")
    data = ("\n".join(lines) + "\n").encode()
    assert 99_000 < data.index(b"\x00") < 101_000
    summary = _import(db, admin, data)
    assert (summary.imported, summary.rejected) == (row + 1, 0)
    nul_row = row + 2
    assert summary.warnings == [
        {"row": nul_row, "warning": "column 'First Name': removed 1 control character (such as a NUL byte)"},
        {"row": nul_row, "warning": "column 'Notes': removed 2 control characters (such as a NUL byte)"},
    ]
    lead = _leads(db, admin)["+14155559998"]
    assert (lead.first_name, lead.notes) == ("Null", "abc")


def test_long_notes_are_clipped_at_import_with_a_row_warning(db: Database, admin: Actor) -> None:
    _settings_with(db, import_max_note_chars=2_000)
    note = "Asked about pricing; call back in May. " * 150  # about 6,000 characters
    data = f"Phone,Email,Notes\n4155550100,ada@example.com,{note}\n4155550101,,short\n".encode()
    summary = _import(db, admin, data)
    assert (summary.imported, summary.rejected) == (2, 0)
    assert summary.warnings == [
        {"row": 2, "warning": f"notes cut to 2,000 characters (they had {len(note.strip()):,})"}
    ]
    leads = _leads(db, admin)
    assert len(leads["+14155550100"].notes) == 2_000
    assert leads["+14155550100"].notes.startswith("Asked about pricing; call back in May.")
    assert leads["+14155550101"].notes == "short"


def test_a_ten_megabyte_note_is_clipped_too(db: Database, admin: Actor) -> None:
    note = "x" * (10 * 1024 * 1024)
    data = f"Phone,Notes\n4155550100,{note}\n".encode()
    summary = _import(db, admin, data)
    assert summary.imported == 1
    assert len(_leads(db, admin)["+14155550100"].notes) == db.settings.import_max_note_chars
    assert any(w["warning"].startswith("notes cut to") for w in summary.warnings)


def test_the_preview_shows_what_reading_and_clipping_changed(db: Database, admin: Actor) -> None:
    _settings_with(db, import_max_note_chars=10)
    data = b"Phone,Email,Notes\n4155550100,a\x00@example.com,a long note indeed\n"
    table = importer.load_table(db, admin, data, "leads.csv")
    [row] = preview_rows(db, admin, table, {"Phone": "phone", "Email": "email", "Notes": "notes"})
    assert row.status == "warning"
    assert row.message == (
        "column 'Email': removed 1 control character (such as a NUL byte); "
        "notes cut to 10 characters (they had 18)"
    )
    assert (row.values["email"], row.values["notes"]) == ("a@example.com", "a long no…")


def _wide_header(columns: int) -> list[str]:
    return ["Phone", "Email", *(f"Extra {i}" for i in range(3, columns + 1))]


def test_a_20000_column_csv_is_refused_with_a_clear_message(db: Database, admin: Actor) -> None:
    header = _wide_header(20_000)
    data = (
        ",".join(header) + "\n" + ",".join(["4155550100", "a@example.com"] + ["x"] * 19_998) + "\n"
    ).encode()
    with pytest.raises(ValidationError, match=r"the file has 20,000 columns, more than the 200 "):
        _import(db, admin, data)


def test_a_16384_column_xlsx_is_refused_with_a_clear_message(
    db: Database, admin: Actor, tmp_path: Any
) -> None:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Leads")
    sheet.append(_wide_header(16_384))
    for row in range(5):
        sheet.append([f"415555010{row}", f"lead{row}@example.com", *(["x"] * 16_382)])
    path = tmp_path / "wide.xlsx"
    workbook.save(path)
    with pytest.raises(ValidationError, match=r"the sheet 'Leads' has 16,384 columns, more than the 200 "):
        import_leads(db, admin, file_name="wide.xlsx", data=path.read_bytes())


def test_a_file_of_the_column_cap_imports_with_at_most_the_custom_field_cap(
    db: Database, admin: Actor
) -> None:
    header = _wide_header(200)
    data = (",".join(header) + "\n" + ",".join(["4155550100", "a@example.com"] + ["x"] * 198) + "\n").encode()
    summary = _import(db, admin, data)
    assert (summary.imported, summary.rejected) == (1, 0)
    custom = _leads(db, admin)["+14155550100"].custom_fields
    assert len(custom) == db.settings.import_max_custom_fields == 50
    assert list(custom) == header[2:52]
    # A mapping that asks for more custom fields than the cap is refused.
    with pytest.raises(ValidationError, match=r"199 columns are kept as custom fields, more than the 50"):
        _import(db, admin, data, mapping=dict.fromkeys(header[1:], "custom"))


def test_merging_never_grows_a_lead_past_the_custom_field_cap(db: Database, admin: Actor) -> None:
    _settings_with(db, import_max_custom_fields=3)
    _import(db, admin, b"Phone,A,B\n4155550100,1,2\n")
    summary = _import(db, admin, b"Phone,C,D,E\n4155550100,3,4,5\n", on_duplicate="fill")
    assert summary.updated == 1
    assert _leads(db, admin)["+14155550100"].custom_fields == {"A": "1", "B": "2", "C": "3"}


def test_columns_the_suggested_mapping_leaves_out_are_named_in_a_warning(db: Database, admin: Actor) -> None:
    _settings_with(db, import_max_custom_fields=3)
    data = b"Phone,A,B,C,D,E\n4155550100,1,2,3,4,5\n"
    summary = _import(db, admin, data)
    assert summary.warnings == [
        {
            "row": 1,
            "warning": "2 columns were not imported, since a lead keeps at most 3 custom fields: "
            "'D', 'E'; give a mapping to choose which columns to keep",
        }
    ]
    assert _leads(db, admin)["+14155550100"].custom_fields == {"A": "1", "B": "2", "C": "3"}


@pytest.mark.parametrize(
    "data",
    [HEADER.encode(), HEADER.rstrip("\n").encode(), (HEADER + "\n,,,,,,,\n\n").encode()],
    ids=["header-only", "header-without-newline", "header-and-blank-rows"],
)
def test_a_file_with_a_header_and_no_leads_is_refused_and_nothing_is_recorded(
    db: Database, admin: Actor, data: bytes
) -> None:
    with db.session(tenant_id=admin.tenant_id) as session:
        audit_before = session.scalar(select(func.count(AuditLog.id)))
    with pytest.raises(ValidationError) as refused:
        _import(db, admin, data)
    assert str(refused.value) == (
        "'leads.csv' has a header row (row 1) but no leads below it: nothing to import; "
        "add the leads under the header row and upload it again"
    )
    with db.session(tenant_id=admin.tenant_id) as session:
        assert session.scalar(select(func.count(LeadImport.id))) == 0
        assert session.scalar(select(func.count(AuditLog.id))) == audit_before
        assert session.scalar(select(func.count(Lead.id))) == 0


def test_an_already_read_table_without_leads_is_refused_too(db: Database, admin: Actor) -> None:
    table = read_table(HEADER.encode(), "leads.csv")
    with pytest.raises(ValidationError, match="no leads below it"):
        importer.import_table(db, admin, table, file_name="leads.csv", sha256="0" * 64,
                              mapping={h: "custom" for h in table.headers})
    with db.session(tenant_id=admin.tenant_id) as session:
        assert session.scalar(select(func.count(LeadImport.id))) == 0
