"""Admin page, API keys: a key created here is shown once and works; revoked here, it stops."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.api_keys import api_key_caller, create_api_key
from core.api_tokens import CredentialRefused
from core.db import Database
from core.models import Role
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory, table

PAGE = "pages/admin.py"


def _click(app: AppTest, label: str) -> AppTest:
    [button] = [b for b in app.button if b.label == label]
    return button.click().run()


def test_a_key_created_here_is_shown_once_and_works(open_page: PageFactory, db: Database) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin, "ada")
    app = open_page(PAGE, admin)
    assert app.selectbox(key="api_key_role").options == ["admin", "manager", "analyst"]
    app.text_input(key="api_key_name").set_value("CRM sync")
    app.selectbox(key="api_key_role").set_value("analyst")
    app = _click(app, "Create the key")
    assert not app.exception and not app.error
    [secret] = [code.value for code in app.code if code.value.startswith("lf_")]
    caller = api_key_caller(db, secret)
    assert caller.actor.role is Role.analyst and caller.actor.tenant_id == admin.tenant_id
    assert "shown only this once" in app.success[0].value
    rows = table(app, "api_keys_table").to_dict("records")
    assert [(r["name"], r["role"], r["state"]) for r in rows] == [("CRM sync", "analyst", "active")]
    assert secret not in str(rows)
    # The next run does not show it again.
    app = app.run()
    assert not [code for code in app.code if code.value.startswith("lf_")]


def test_a_key_revoked_here_stops_working(open_page: PageFactory, db: Database) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin, "ada")
    created = create_api_key(db, admin, name="Old sync", role=Role.manager)
    app = open_page(PAGE, admin)
    app = _click(app, "Revoke the key")
    assert not app.exception and not app.error
    assert "revoked" in app.success[0].value
    with pytest.raises(CredentialRefused, match="revoked"):
        api_key_caller(db, created.secret)
    assert [r["state"] for r in table(app, "api_keys_table").to_dict("records")] == ["revoked"]


def test_an_error_is_shown_not_raised(open_page: PageFactory, db: Database) -> None:
    app = open_page(PAGE, make_actor(db, make_tenant(db), Role.owner, "olga"))
    app = _click(app, "Create the key")  # no name
    assert not app.exception
    assert "needs a name" in app.error[0].value
