"""The Campaigns page's housekeeping: clone, archive and restore, delete a draft after confirming."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from core.campaigns import create_campaign, list_campaigns
from core.db import Database
from core.models import AuditLog, Campaign, Role
from core.permissions import Actor
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory
from tests.pages.conftest import table as page_table

PAGE = "pages/campaigns.py"


def _button(app: AppTest, key: str) -> Any:
    return next(b for b in app.button if b.key == key)


def _keys(app: AppTest) -> set[str]:
    return {str(b.key) for b in app.button}


def _actions(db: Database, tenant: int) -> list[str]:
    with db.session(tenant_id=tenant, read_only=True) as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.entity == "campaign")
                                    .order_by(AuditLog.id)))


def _setup(db: Database) -> tuple[int, Actor]:
    tenant = make_tenant(db)
    return tenant, make_actor(db, tenant, Role.manager)


def test_clone_opens_a_new_draft_with_the_same_settings(db: Database, open_page: PageFactory) -> None:
    tenant, manager = _setup(db)
    original = create_campaign(db, manager, name="Winter", channel="email", system_prompt="Be warm.").id
    app = open_page(PAGE, manager)
    _button(app, f"cmp{original}_actions_clone").click().run()
    assert not app.exception and not app.error
    assert "'Copy of Winter' created as a draft" in app.success[0].value
    assert app.header[0].value == "Copy of Winter · draft"
    copy = next(c for c in list_campaigns(db, manager) if c.id != original)
    assert (copy.channel, copy.system_prompt) == ("email", "Be warm.")
    assert _actions(db, tenant) == ["create", "clone"]


def test_archive_hides_a_finished_campaign_and_the_filter_restores_it(
    db: Database, open_page: PageFactory
) -> None:
    tenant, manager = _setup(db)
    done = create_campaign(db, manager, name="Autumn", channel="sms").id
    live = create_campaign(db, manager, name="Live one", channel="sms").id
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == done).values(status="completed"))
        session.execute(update(Campaign).where(Campaign.id == live).values(status="running"))
    app = open_page(PAGE, manager)
    app.selectbox(key="campaigns_selected").set_value(done).run()
    # A running campaign offers neither archive nor delete; a completed one may be archived.
    assert f"cmp{done}_actions_archive" in _keys(app) and f"cmp{done}_actions_delete" not in _keys(app)
    _button(app, f"cmp{done}_actions_archive").click().run()
    assert "'Autumn' archived" in app.success[0].value
    assert list(page_table(app, "campaigns_list")["name"]) == ["Live one"]
    assert f"#{done} Autumn (completed)" not in app.selectbox(key="campaigns_selected").options
    assert {f"cmp{live}_actions_archive", f"cmp{live}_actions_delete"}.isdisjoint(_keys(app))
    app.toggle(key="campaigns_show_archived").set_value(True).run()
    assert list(page_table(app, "campaigns_list")["name"]) == ["Autumn"]
    assert app.header[0].value == "Autumn · completed: 0 sent · archived"  # the run in words
    _button(app, f"cmp{done}_actions_restore").click().run()
    assert "'Autumn' restored" in app.success[0].value
    assert {c.name for c in list_campaigns(db, manager)} == {"Autumn", "Live one"}
    assert _actions(db, tenant) == ["create", "create", "archive", "restore"]


def test_delete_asks_first_and_keep_it_keeps_the_draft(db: Database, open_page: PageFactory) -> None:
    tenant, manager = _setup(db)
    draft = create_campaign(db, manager, name="Scratch <test>", channel="sms").id
    app = open_page(PAGE, manager)
    _button(app, f"cmp{draft}_actions_delete").click().run()
    assert "Delete the draft 'Scratch \\<test\\>'?" in app.warning[0].value
    assert [c.id for c in list_campaigns(db, manager)] == [draft]  # nothing deleted yet
    _button(app, f"cmp{draft}_actions_delete_no").click().run()
    # The confirmation is gone (the Run tab's pre-flight may still warn about the empty draft).
    assert not [w for w in app.warning if "Delete the draft" in w.value]
    assert [c.id for c in list_campaigns(db, manager)] == [draft]
    _button(app, f"cmp{draft}_actions_delete").click().run()
    _button(app, f"cmp{draft}_actions_delete_yes").click().run()
    assert not app.exception and not app.error
    assert "Draft 'Scratch \\<test\\>' deleted." in app.success[0].value
    assert list_campaigns(db, manager) == []
    assert _actions(db, tenant) == ["create", "delete"]


def test_an_analyst_sees_no_housekeeping_buttons(db: Database, open_page: PageFactory) -> None:
    tenant, manager = _setup(db)
    draft = create_campaign(db, manager, name="Scratch", channel="sms").id
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert not any(k.startswith(f"cmp{draft}_actions") for k in _keys(app))
