"""A lead's page: one click from the table or its URL (?lead=<id>), read by managers, edited and
erased by admins, refused to analysts, and never another tenant's lead."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from core.db import Database
from core.errors import NotFound
from core.leads.detail import lead_detail
from core.leads.queries import list_leads
from core.models import Lead, Role
from core.permissions import Actor
from tests.core.leads.test_detail import Seeded, seed_lead
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory
from tests.pages.markdown_checks import DIRECTIVE, LATEX, assert_shown_escaped, markdown_bodies


def _lead_page(open_page: PageFactory, actor: Actor, lead_id: int | str) -> AppTest:
    app = open_page("pages/leads.py", actor)
    app.query_params["lead"] = str(lead_id)
    return app.run()


def _buttons(app: AppTest) -> dict[str, object]:
    return {b.key: b for b in app.button}


def _shown_text(app: AppTest) -> str:
    tables = " ".join(frame.value.to_string() for frame in app.dataframe)
    return " ".join(markdown_bodies(app)) + " " + tables + " " + " ".join(t.label for t in app.tabs)


def test_a_manager_opens_a_lead_from_the_table_with_one_click_and_only_reads(
    db: Database, open_page: PageFactory
) -> None:
    seeded = seed_lead(db)
    manager = make_actor(db, seeded.admin.tenant_id, Role.manager)
    app = open_page("pages/leads.py", manager)
    assert not app.exception
    assert not app.get("file_uploader") and not app.tabs  # no import wizard
    ids = [int(i) for i in app.dataframe("leads_table").value["id"]]
    assert set(ids) == {seeded.lead_id, seeded.other_lead_id}
    assert not {"leads_add_tags", "leads_opt_out", "leads_export"} & set(_buttons(app))
    # Selecting a row is the click: the page opens the lead and puts it in the URL.
    app.session_state["leads_table"] = {"selection": {"rows": [ids.index(seeded.lead_id)], "columns": [],
                                                      "cells": []}}
    app.run()
    assert not app.exception
    assert app.query_params["lead"] == str(seeded.lead_id)
    assert [s.value for s in app.subheader] == ["Chloé Müller"]
    assert not [e for e in app.expander if "Edit" in e.label or "Erase" in e.label]
    # Back to the table.
    _buttons(app)["lead_back"].click().run()
    assert not app.exception
    assert "lead" not in app.query_params
    assert not app.subheader and app.dataframe("leads_table").value["id"].size == 2


def test_the_lead_page_shows_everything_in_a_sales_managers_words(
    db: Database, open_page: PageFactory
) -> None:
    seeded = seed_lead(db)
    app = _lead_page(open_page, seeded.admin, seeded.lead_id)
    assert not app.exception
    text = _shown_text(app)
    for expected in ("Chloé Müller", "+14155550128", "Home phone", "chloe.m@home.example", "vip",
                     "Spring push", "step 2 of 2", "follow-up due 2026-12-02 09:00 UTC", "Autumn mail",
                     "draft waiting for review", "Hi Chloé, about Engines Ltd", "delivered", "$0.0043",
                     "Replied to Spring push", "tagged", "Not opted out",
                     "because of a do-not-contact entry"):
        assert expected in text, expected
    assert "awaiting_approval" not in text and "in_progress" not in text
    assert [t.label for t in app.tabs] == ["Details", "Campaigns (2)", "Messages (1)", "Replies (1)",
                                           "History (1)"]


def test_another_tenants_lead_in_the_url_is_not_found(db: Database, open_page: PageFactory) -> None:
    seeded = seed_lead(db)
    stranger = make_actor(db, make_tenant(db, "Rival"), Role.owner)
    app = _lead_page(open_page, stranger, seeded.lead_id)
    assert not app.exception
    assert f"Lead #{seeded.lead_id} does not exist" in app.error[0].value
    assert "Chloé" not in _shown_text(app)


def test_a_lead_number_that_is_not_one_says_so(db: Database, open_page: PageFactory) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    app = _lead_page(open_page, admin, "abc")
    assert not app.exception
    assert "'abc' is not a lead number" in app.error[0].value


def test_analysts_cannot_open_a_lead_by_its_url(db: Database, open_page: PageFactory) -> None:
    seeded = seed_lead(db)
    analyst = make_actor(db, seeded.admin.tenant_id, Role.analyst)
    app = _lead_page(open_page, analyst, seeded.lead_id)
    assert "cannot open this page" in app.error[0].value
    assert "Chloé" not in _shown_text(app)


def test_an_admin_edit_shows_every_problem_then_saves_normalised(
    db: Database, open_page: PageFactory
) -> None:
    seeded = seed_lead(db)
    app = _lead_page(open_page, seeded.admin, seeded.lead_id)
    app.text_input(key=f"lead_edit_{seeded.lead_id}_phone").input("12345")
    app.text_input(key=f"lead_edit_{seeded.lead_id}_country").input("Atlantis")
    app.button(key=f"FormSubmitter:lead_edit_{seeded.lead_id}-Save changes").click().run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert "Not saved: 2 problems to fix." in errors[0]
    assert any("Phone '12345' is not a valid number for US" in e for e in errors)
    assert any("Country 'Atlantis' is not recognised" in e for e in errors)
    assert lead_detail(db, seeded.admin, seeded.lead_id).fields["phone"] == "+14155550128"
    app.text_input(key=f"lead_edit_{seeded.lead_id}_phone").input("(415) 555-0177")
    app.text_input(key=f"lead_edit_{seeded.lead_id}_country").input("")
    app.text_input(key=f"lead_edit_{seeded.lead_id}_tags").input("vip, VIP, Prospect")
    app.button(key=f"FormSubmitter:lead_edit_{seeded.lead_id}-Save changes").click().run()
    assert not app.exception
    assert "Saved: phone, tags changed." in app.success[0].value
    assert app.text_input(key=f"lead_edit_{seeded.lead_id}_phone").value == "+14155550177"
    saved = lead_detail(db, seeded.admin, seeded.lead_id)
    assert saved.fields["phone"] == "+14155550177" and saved.tags == ["prospect", "vip"]
    assert saved.audit[0].action == "edited"


def test_an_admin_erases_a_lead_after_typing_its_name(db: Database, open_page: PageFactory) -> None:
    seeded = seed_lead(db)
    app = _lead_page(open_page, seeded.admin, seeded.lead_id)
    warning = " ".join(w.value for w in app.warning)
    assert "Erasing deletes **Chloé Müller**, its 2 tags and its 2 enrolments" in warning
    assert "Messages sent to it (1) stay in the send ledger" in warning
    assert "no campaign will message these addresses again" in warning
    assert _buttons(app)["lead_erase"].disabled
    app.text_input(key=f"lead_erase_confirm_{seeded.lead_id}").input("chloé müller").run()
    assert not _buttons(app)["lead_erase"].disabled
    _buttons(app)["lead_erase"].click().run()
    assert not app.exception
    assert "lead" not in app.query_params
    assert f"Lead #{seeded.lead_id} was erased: 1 message kept anonymised" in app.success[0].value
    with pytest.raises(NotFound):
        lead_detail(db, seeded.admin, seeded.lead_id)
    assert list(list_leads(db, seeded.admin).rows["id"]) == [seeded.other_lead_id]


def test_lead_values_on_the_page_are_escaped(db: Database, open_page: PageFactory) -> None:
    seeded: Seeded = seed_lead(db)
    with db.session(tenant_id=seeded.admin.tenant_id) as session, session.begin():
        session.execute(update(Lead).where(Lead.id == seeded.lead_id).values(first_name=DIRECTIVE,
                                                                             last_name=LATEX))
    app = _lead_page(open_page, seeded.admin, seeded.lead_id)
    assert not app.exception
    assert_shown_escaped(app, DIRECTIVE, LATEX)
