"""The Leads page: the upload wizard end to end, the lead table, and who may open it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from core.db import Database
from core.errors import Conflict, NotFound
from core.leads.queries import list_leads
from core.models import Lead, LeadImport, Role
from core.permissions import Actor
from pages.lead_sections import wizard
from tests.factories import GRACES, make_actor, make_tenant
from tests.pages.conftest import PageFactory, table
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
    assert _field_for(app, "Mobile") == "phone:mobile"
    assert _field_for(app, "E-mail") == "email"
    assert _field_for(app, "Colour") == "custom"
    app.text_input(key="leads_tags").input("fair").run()
    _button(app, "leads_preview").click().run()
    assert not app.exception
    preview = table(app, "leads_preview_rows")
    # Carl's phone is junk but his email is fine: he is imported without the phone.
    assert list(preview["status"]) == ["ok", "ok", "warning", "ok"]
    assert "not a valid number for US; left out" in preview["problem"][2]
    _button(app, "leads_import").click().run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Rows": "4", "Imported": "3", "Updated": "0", "Duplicates": "1", "Rejected": "0",
                       "With warnings": "1"}
    assert [s.value for s in app.subheader] == ["Imported with warnings"]
    warnings = table(app, "leads_warnings_table")
    assert list(warnings["row"]) == [6]
    assert list(warnings["warning"]) == ["phone '12345' is not a valid number for US; left out"]
    assert [b.proto.label for b in app.get("download_button")] == ["Download the warnings (CSV)"]
    page = list_leads(db, admin)
    assert page.total == 3
    assert set(page.rows["tags"]) == {"fair"}


UK_CSV = (
    b"Name,Phone,Email\n"
    b"Ann Lee,020 7946 0018,\n"
    b"Bob Day,(281) 741-1316,bob@example.com\n"
    b"Cy Orr,12,\n"
)


def test_wizard_reads_national_numbers_in_the_chosen_country_and_reports_both_lists(
    db: Database, open_page: PageFactory
) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    app.file_uploader(key="leads_upload").upload("uk.csv", UK_CSV, "text/csv").run()
    _button(app, "leads_preview").click().run()
    assert not app.exception
    country = app.selectbox(key="leads_phone_country")
    assert country.value == "US"  # the tenant's country by default
    assert list(table(app, "leads_preview_rows")["status"]) == ["rejected", "ok", "rejected"]
    country.select("GB").run()
    preview = table(app, "leads_preview_rows")
    assert list(preview["status"]) == ["ok", "warning", "rejected"]
    assert preview["phone"][0] == "+442079460018"
    assert "written like a North American number (+12817411316)" in preview["problem"][1]
    _button(app, "leads_import").click().run()
    assert not app.exception
    assert [s.value for s in app.subheader] == ["Rejected rows (not imported)", "Imported with warnings"]
    labels = [b.proto.label for b in app.get("download_button")]
    assert labels == ["Download the rejected rows (CSV)", "Download the warnings (CSV)"]
    assert list_leads(db, admin).total == 2


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
    lead_id = int(app.dataframe("leads_table").value["id"][0])
    app.multiselect(key="leads_selected").select(lead_id).run()
    app.text_input(key="leads_new_tags").input("vip").run()
    _button(app, "leads_add_tags").click().run()
    assert not app.exception
    app.multiselect(key="leads_selected").select(lead_id).run()
    _button(app, "leads_opt_out").click().run()
    assert not app.exception
    from core.leads.queries import LeadFilter

    assert list_leads(db, admin, LeadFilter(opted_out=True)).total == 0  # asked first
    _button(app, "leads_opt_out_confirm").click().run()
    assert not app.exception
    opted = list_leads(db, admin, LeadFilter(opted_out=True))
    assert list(opted.rows["id"]) == [lead_id]
    assert opted.rows["tags"][0] == "vip"


def test_analysts_are_stopped(db: Database, open_page: PageFactory) -> None:
    actor = make_actor(db, make_tenant(db), Role.analyst)
    app = open_page("pages/leads.py", actor)
    assert "cannot open this page" in app.error[0].value
    assert not app.get("file_uploader")
    assert not app.dataframe


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


SENSITIVE_CSV = (
    b"Title,GivenName,Field 3,CCNumber,Password,Reference\n"
    b"Ms.,Ramona,ramona@example.com,4539165193923664,Choo0ohvo,382-10-4362\n"
    b"Mrs.,Beverly,beverly@example.com,5275723855513432,Cheeph8oh,575-90-4978\n"
)


def test_mapping_step_shows_suggestion_confidence_evidence_and_left_out_columns(
    db: Database, open_page: PageFactory
) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    app.file_uploader(key="leads_upload").upload("fng.csv", SENSITIVE_CSV, "text/csv").run()
    assert not app.exception
    assert _field_for(app, "Title") == "salutation"
    assert _field_for(app, "Field 3") == "email"
    assert [_field_for(app, h) for h in ("CCNumber", "Password", "Reference")] == ["ignore"] * 3
    captions = [c.value for c in app.caption]
    assert "Suggested: Salutation (Mr., Ms., Herr, Mme) (95% sure). 100% of values are honorifics " \
        "such as Mr. or Ms., not job titles." in captions
    assert "Suggested: Email (95% sure). 100% of values are valid emails." in captions
    left_out = app.warning[0].value
    assert left_out.startswith("3 columns left out unless you choose a field for them")
    assert "**CCNumber**: Its header says it holds payment card numbers; map it yourself" in left_out
    assert "**Reference**: 100% of values are social security or identity numbers" in left_out
    # The person maps one of them explicitly: it is kept, the others stay out.
    next(s for s in app.selectbox if s.label == "Field for Password").select("custom").run()
    _button(app, "leads_preview").click().run()
    _button(app, "leads_import").click().run()
    assert not app.exception
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        custom = {lead.email: lead.custom_fields for lead in session.scalars(select(Lead))}
    assert custom == {
        "ramona@example.com": {"salutation": "Ms.", "Password": "Choo0ohvo"},
        "beverly@example.com": {"salutation": "Mrs.", "Password": "Cheeph8oh"},
    }


def test_file_values_reach_the_markdown_escaped(db: Database, open_page: PageFactory) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    hostile = (f'First Name,Phone,{IMAGE}\n"{DIRECTIVE}",+14155550100,"{LATEX}"\n').encode()
    app.file_uploader(key="leads_upload").upload(f"{IMAGE}.csv", hostile, "text/csv").run()
    # The header, a cell and the file name all show, escaped, in the mapping step.
    assert_shown_escaped(app, IMAGE, DIRECTIVE, LATEX, f"{IMAGE}.csv")


def _select_all_found(app: AppTest, query: str) -> list[int]:
    app.text_input(key="leads_filter_search").input(query).run()
    ids = [int(i) for i in app.dataframe("leads_table").value["id"]]
    app.multiselect(key="leads_selected").set_value(ids).run()
    return ids


def _opted_out_and_suppressed(db: Database, actor: Actor) -> tuple[int, int]:
    from core.leads.queries import LeadFilter
    from core.suppressions import list_suppressions

    return list_leads(db, actor, LeadFilter(opted_out=True)).total, list_suppressions(db, actor).total


def test_bulk_opt_out_asks_first_with_the_counts_then_offers_an_undo(
    db: Database, open_page: PageFactory
) -> None:
    from core.leads.importer import import_leads

    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="graces.csv", data=GRACES)
    app = open_page("pages/leads.py", admin)
    assert len(_select_all_found(app, "GRAC")) == 3
    _button(app, "leads_opt_out").click().run()
    assert not app.exception
    # Nothing happened yet: the page asks, with the counts and the names.
    assert _opted_out_and_suppressed(db, admin) == (0, 0)
    question = app.warning[-1].value
    assert "Opt out 3 leads (5 addresses)?" in question
    assert "Grace Hopper" in question and "Gracie Allen" in question
    _button(app, "leads_opt_out_confirm").click().run()
    assert not app.exception
    assert _opted_out_and_suppressed(db, admin) == (3, 5)
    assert "3 leads opted out and 5 addresses suppressed" in app.success[-1].value
    assert not [b for b in app.button if b.key == "leads_opt_out_confirm"]
    _button(app, "leads_opt_out_undo").click().run()
    assert not app.exception
    assert _opted_out_and_suppressed(db, admin) == (0, 0)
    assert "3 leads opted back in and 5 suppressions removed" in app.success[-1].value
    assert not [b for b in app.button if b.key == "leads_opt_out_undo"]


def test_bulk_opt_out_can_be_cancelled_and_acts_on_what_it_asked_about(
    db: Database, open_page: PageFactory
) -> None:
    from core.leads.importer import import_leads

    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="graces.csv", data=GRACES)
    app = open_page("pages/leads.py", admin)
    _select_all_found(app, "grace h")
    _button(app, "leads_opt_out").click().run()
    _button(app, "leads_opt_out_cancel").click().run()
    assert not app.exception
    assert not app.warning
    assert _opted_out_and_suppressed(db, admin) == (0, 0)
    # Asked about one lead, then the selection changed: the confirmation still means that one lead.
    _button(app, "leads_opt_out").click().run()
    assert "Opt out 1 lead (2 addresses)?" in app.warning[-1].value
    _select_all_found(app, "grac")
    _button(app, "leads_opt_out_confirm").click().run()
    assert _opted_out_and_suppressed(db, admin) == (1, 2)


def test_bulk_opt_out_without_a_selection_says_what_to_do(db: Database, open_page: PageFactory) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    _button(app, "leads_opt_out").click().run()
    assert not app.exception
    assert "select at least one lead" in app.error[-1].value.lower()
    assert not app.warning


def test_bulk_opt_out_confirmation_escapes_lead_names(db: Database, open_page: PageFactory) -> None:
    from core.leads.importer import import_leads

    admin = make_actor(db, make_tenant(db), Role.admin)
    hostile = f'First Name,Last Name,Phone\n"{DIRECTIVE}","{LATEX}",+14155550100\n'.encode()
    import_leads(db, admin, file_name="hostile.csv", data=hostile)
    app = open_page("pages/leads.py", admin)
    ids = [int(i) for i in app.dataframe("leads_table").value["id"]]
    app.multiselect(key="leads_selected").set_value(ids).run()
    _button(app, "leads_opt_out").click().run()
    assert not app.exception
    assert_shown_escaped(app, DIRECTIVE, LATEX)


@pytest.mark.parametrize("query", ["CHLOÉ", "chloe", "muller dubois", "415-555-0128", "(415) 555 0128"])
def test_lead_table_search_ignores_case_and_accents_and_reads_phones(
    db: Database, open_page: PageFactory, query: str
) -> None:
    from core.leads.importer import import_leads

    admin = make_actor(db, make_tenant(db), Role.admin)
    people = "First Name,Last Name,Phone\nChloé,Müller Dubois,+1 415 555 0128\nBob,Smith,+1 415 555 0199\n"
    import_leads(db, admin, file_name="people.csv", data=people.encode())
    app = open_page("pages/leads.py", admin)
    app.text_input(key="leads_filter_search").input(query).run()
    assert not app.exception
    assert list(app.dataframe("leads_table").value["first_name"]) == ["Chloé"]


def test_bulk_opt_out_of_leads_opted_out_already_says_so_and_offers_no_undo(
    db: Database, open_page: PageFactory
) -> None:
    from core.leads.importer import import_leads
    from core.leads.queries import opt_out

    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="graces.csv", data=GRACES)
    app = open_page("pages/leads.py", admin)
    ids = _select_all_found(app, "grace hopper")
    opt_out(db, admin, ids)
    _button(app, "leads_opt_out").click().run()
    notes = "1 of them is opted out already. 2 of the addresses are suppressed already."
    assert notes in app.warning[-1].value
    _button(app, "leads_opt_out_confirm").click().run()
    assert not app.exception
    assert "Nothing changed" in app.success[-1].value
    assert not [b for b in app.button if b.key == "leads_opt_out_undo"]


def test_wizard_refuses_a_file_with_a_header_and_no_leads(db: Database, open_page: PageFactory) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = open_page("pages/leads.py", admin)
    app.file_uploader(key="leads_upload").upload("empty.csv", b"First Name,Phone,Email\n", "text/csv").run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "'empty.csv' has a header row (row 1) but no leads below it: nothing to import; add the "
        "leads under the header row and upload it again."
    ]
    assert not [b for b in app.button if b.key in ("leads_preview", "leads_import")]
    with db.session(tenant_id=admin.tenant_id) as session:
        assert session.scalar(select(func.count(LeadImport.id))) == 0


BUSY = "Another import of fair.csv is running: wait for it to finish."


@pytest.mark.parametrize(("service", "clicks"), [
    ("suggest_for_table", []),  # the mapping step's suggestion
    ("tenant_country", ["leads_preview"]),  # the preview step's default country
    ("preview_rows", ["leads_preview"]),
    ("import_table", ["leads_preview", "leads_import"]),
])
def test_wizard_step_whose_service_fails_is_a_message_not_a_traceback(
    db: Database, open_page: PageFactory, monkeypatch: pytest.MonkeyPatch, service: str,
    clicks: list[str],
) -> None:
    def busy(*args: object, **kwargs: object) -> None:
        raise Conflict(BUSY)

    monkeypatch.setattr(wizard, service, busy)
    app = open_page("pages/leads.py", make_actor(db, make_tenant(db), Role.admin))
    app.file_uploader(key="leads_upload").upload("fair.csv", CSV, "text/csv").run()
    for key in clicks:
        assert not app.exception and not app.error
        _button(app, key).click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [BUSY]
    assert not app.metric  # no summary: nothing claims the file was imported
    assert _button(app, "leads_restart")  # the wizard still offers a way out


def test_wizard_summary_whose_report_fails_is_a_message_not_a_traceback(
    db: Database, open_page: PageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(*args: object, **kwargs: object) -> None:
        raise NotFound("No import 1.")

    monkeypatch.setattr(wizard, "get_import", gone)
    app = open_page("pages/leads.py", make_actor(db, make_tenant(db), Role.admin))
    app.file_uploader(key="leads_upload").upload("fair.csv", CSV, "text/csv").run()
    _button(app, "leads_preview").click().run()
    _button(app, "leads_import").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == ["No import 1."]
    assert {m.label: m.value for m in app.metric}["Imported"] == "3"  # the counts still show
