"""The Leads page: the upload wizard end to end, the lead table, and who may open it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.db import Database
from core.leads.queries import list_leads
from core.models import Role
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory
from tests.pages.markdown_checks import DIRECTIVE, IMAGE, LATEX, assert_shown_escaped

CSV = (
    b"Lead list exported 2026-11-01\n"
    b"\n"
    b"First Name,Last Name,Mobile,E-mail,Company,Colour\n"
    b"ada,LOVELACE,(415) 555-0100,ada@example.com,Engines,blue\n"
    b"Bob,Smith,+1 415 555 0101,bob@example.org,Acme,red\n"
    b"Carl,Jones,12345,carl@example.com,,\n"
    b"Ada,Again,+14155550100,,,\n"
)


def _button(app: AppTest, key: str) -> object:
    return next(b for b in app.button if b.key == key)


def _field_for(app: AppTest, header: str) -> str:
    return next(s for s in app.selectbox if s.label == f"Field for {header}").value


def test_wizard_imports_a_file_and_offers_the_rejects(db: Database, open_page: PageFactory) -> None:
    tenant = make_tenant(db)
    admin = make_actor(db, tenant, Role.admin)
    app = open_page("pages/leads.py", admin)
    assert not app.exception
    app.file_uploader(key="leads_upload").upload("fair.csv", CSV, "text/csv").run()
    assert not app.exception
    # The header on row 3 was found and the synonyms mapped the columns.
    assert "header on row 3" in app.caption[0].value
    assert _field_for(app, "Mobile") == "phone"
    assert _field_for(app, "E-mail") == "email"
    assert _field_for(app, "Colour") == "custom"
    app.text_input(key="leads_tags").input("fair").run()
    _button(app, "leads_preview").click().run()
    assert not app.exception
    preview = app.dataframe[0].value
    assert list(preview["status"]) == ["ok", "ok", "rejected", "ok"]
    assert "not a valid number for US" in preview["problem"][2]
    _button(app, "leads_import").click().run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Rows": "4", "Imported": "2", "Updated": "0", "Duplicates": "1", "Rejected": "1"}
    assert app.get("download_button")
    page = list_leads(db, admin)
    assert page.total == 2
    assert set(page.rows["tags"]) == {"fair"}


def test_wizard_shows_a_clear_error_for_a_bad_file(db: Database, open_page: PageFactory) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    app.file_uploader(key="leads_upload").upload("leads.xlsx", b"not a zip at all", "application/zip").run()
    assert not app.exception
    assert any("not an XLSX workbook" in e.value for e in app.error)


def test_lead_table_searches_tags_and_opts_out(db: Database, open_page: PageFactory) -> None:
    from core.leads.importer import import_leads

    tenant = make_tenant(db)
    admin = make_actor(db, tenant, Role.admin)
    import_leads(db, admin, file_name="a.csv", data=CSV.split(b"\n", 2)[2])
    app = open_page("pages/leads.py", admin)
    app.text_input(key="leads_filter_search").input("lovelace").run()
    assert "1 lead ·" in app.caption[-1].value
    lead_id = int(app.dataframe[-1].value["id"][0])
    app.multiselect(key="leads_selected").select(lead_id).run()
    app.text_input(key="leads_new_tags").input("vip").run()
    _button(app, "leads_add_tags").click().run()
    assert not app.exception
    app.multiselect(key="leads_selected").select(lead_id).run()
    _button(app, "leads_opt_out").click().run()
    assert not app.exception
    from core.leads.queries import LeadFilter

    opted = list_leads(db, admin, LeadFilter(opted_out=True))
    assert list(opted.rows["id"]) == [lead_id]
    assert opted.rows["tags"][0] == "vip"


@pytest.mark.parametrize("role", [Role.manager, Role.analyst])
def test_roles_without_lead_rights_are_stopped(db: Database, open_page: PageFactory, role: Role) -> None:
    actor = make_actor(db, make_tenant(db), role)
    app = open_page("pages/leads.py", actor)
    assert "cannot open this page" in app.error[0].value
    assert not app.get("file_uploader")


def test_wizard_offers_the_sheets_of_a_workbook(db: Database, open_page: PageFactory) -> None:
    import io

    import xlsxwriter

    admin = make_actor(db, make_tenant(db), Role.admin)
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer)
    workbook.add_worksheet("Notes").write_string(0, 0, "nothing here")
    sheet = workbook.add_worksheet("Leads")
    for col, value in enumerate(["Phone", "Email"]):
        sheet.write_string(0, col, value)
    sheet.write_string(1, 0, "(415) 555-0100")
    sheet.write_string(1, 1, "ada@example.com")
    workbook.close()
    app = open_page("pages/leads.py", admin)
    app.file_uploader(key="leads_upload").upload("leads.xlsx", buffer.getvalue()).run()
    assert not app.exception
    assert app.selectbox(key="leads_sheet").options == ["Notes", "Leads"]
    app.selectbox(key="leads_sheet").select("Leads").run()
    assert not app.exception
    assert _field_for(app, "Phone") == "phone"
    _button(app, "leads_preview").click().run()
    _button(app, "leads_import").click().run()
    assert {m.label: m.value for m in app.metric}["Imported"] == "1"


def test_file_values_reach_the_markdown_escaped(db: Database, open_page: PageFactory) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    hostile = (f'First Name,Phone,{IMAGE}\n"{DIRECTIVE}",+14155550100,"{LATEX}"\n').encode()
    app.file_uploader(key="leads_upload").upload(f"{IMAGE}.csv", hostile, "text/csv").run()
    # The header, a cell and the file name all show, escaped, in the mapping step.
    assert_shown_escaped(app, IMAGE, DIRECTIVE, LATEX, f"{IMAGE}.csv")
