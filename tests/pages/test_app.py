"""app.py: the first-owner screen, the login gate, and the navigation each role gets."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.auth import has_any_user, username_from_session_token
from core.config import ROOT, Settings
from core.db import Database
from core.models import Role
from core.permissions import Actor
from pages.auth import COOKIE_CHANGE_KEY, SIGNED_OUT_KEY, USERNAME_KEY
from pages.common import ACTOR_KEY
from pages.registry import pages_for
from tests.factories import PASSWORD, make_actor, make_tenant


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()


def _fill_owner_form(app: AppTest, **overrides: str) -> AppTest:
    values = {"Organisation name": "Acme", "Your name": "Olga Owner", "Username": "olga",
              "Email (optional)": "olga@example.com", "Password": PASSWORD,
              "Repeat the password": PASSWORD}
    values.update(overrides)
    for label, value in values.items():
        next(t for t in app.text_input if t.label == label).input(value)
    return app.button[0].click().run()


def _sign_in(app: AppTest, username: str, password: str) -> AppTest:
    next(t for t in app.text_input if t.label == "Username").input(username)
    next(t for t in app.text_input if t.label == "Password").input(password)
    return app.button[0].click().run()


def test_empty_database_shows_first_owner_screen(page_env: str, db: Database) -> None:
    app = _app()
    assert app.title[0].value == "Welcome to Leadflow"
    app = _fill_owner_form(app)
    assert not app.exception
    assert has_any_user(db)
    assert app.title[0].value == "Sign in to Leadflow"
    assert "Owner 'olga' created" in app.success[0].value


def test_first_owner_screen_is_gone_once_a_user_exists(page_env: str, db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    app = _app()
    assert app.title[0].value == "Sign in to Leadflow"
    assert not any(t.label == "Organisation name" for t in app.text_input)


def test_first_owner_errors_are_messages(page_env: str, db: Database) -> None:
    app = _fill_owner_form(_app(), **{"Repeat the password": "something else"})
    assert "passwords differ" in app.error[0].value
    app = _fill_owner_form(app, Password="short", **{"Repeat the password": "short"})
    assert "at least 10 characters" in app.error[0].value
    assert not has_any_user(db)


def test_login_then_overview(page_env: str, db: Database) -> None:
    make_actor(db, make_tenant(db), Role.manager, "mia")
    app = _sign_in(_app(), "mia", PASSWORD)
    assert not app.exception
    assert app.session_state[ACTOR_KEY]["username"] == "mia"
    assert app.title[0].value == "Overview"
    assert "Start by importing leads" in app.info[0].value


def test_wrong_password_is_a_message_and_locks_after_five(page_env: str, db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    app = _app()
    for _ in range(4):
        app = _sign_in(app, "ann", "wrong password")
        assert "wrong username or password" in app.error[0].value
    app = _sign_in(app, "ann", "wrong password")
    assert "locked for 15 minutes" in app.error[0].value
    app = _sign_in(app, "ann", PASSWORD)
    assert "locked" in app.error[0].value
    assert ACTOR_KEY not in app.session_state


def _registered_titles(app: AppTest) -> set[str]:
    # AppTest keeps the pages the last run registered with st.navigation.
    return {info["page_name"] for info in app._registered_pages.values()}


# Written out, not derived from PAGES: this is the role table, so a wrong permission on a
# page spec fails here instead of being copied into the expectation.
ANALYST_PAGES = {"Overview", "Campaigns", "Run monitor", "Costs", "Reports"}
MANAGER_PAGES = ANALYST_PAGES | {"Review queue"}
ADMIN_PAGES = MANAGER_PAGES | {"Leads", "Admin"}
ROLE_PAGES = {Role.analyst: ANALYST_PAGES, Role.manager: MANAGER_PAGES, Role.admin: ADMIN_PAGES,
              Role.owner: ADMIN_PAGES}


@pytest.mark.parametrize("role", list(Role))
def test_navigation_shows_exactly_the_roles_pages(page_env: str, db: Database, role: Role) -> None:
    make_actor(db, make_tenant(db), role, "user1")
    app = _sign_in(_app(), "user1", PASSWORD)
    assert not app.exception
    assert _registered_titles(app) == ROLE_PAGES[role]


def test_analyst_gets_no_admin_pages() -> None:
    analyst = Actor(user_id=1, tenant_id=1, role=Role.analyst)
    titles = {spec.title for specs in pages_for(analyst).values() for spec in specs}
    assert titles == ANALYST_PAGES  # the table, written out above: no Leads, Admin, Review


def test_missing_cookie_key_outside_dev_mode_is_refused(page_env: str, monkeypatch) -> None:
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "false")
    app = _app()
    assert "LEADFLOW_COOKIE_KEY" in app.error[0].value


@pytest.mark.parametrize("active", [True, False])
def test_a_restored_session_is_checked_against_the_database(page_env: str, db: Database,
                                                            active: bool) -> None:
    """A session restored from the cookie ends when the account has been deactivated since."""
    from sqlalchemy import update

    from core.models import User

    make_actor(db, make_tenant(db), Role.manager, "mia")
    with db.session(system=True) as s, s.begin():
        s.execute(update(User).values(active=active))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    app.session_state[USERNAME_KEY] = "mia"  # what the cookie or an earlier sign-in restored
    app = app.run()
    assert not app.exception
    expected = "Overview" if active else "Sign in to Leadflow"
    assert app.title[0].value == expected
    # A deactivated account's cookie is deleted, and no longer counts in this session.
    assert (USERNAME_KEY in app.session_state) is active
    if not active:
        assert app.session_state[COOKIE_CHANGE_KEY] == {"method": "delete"}
        assert app.session_state[SIGNED_OUT_KEY] is True


def test_sign_in_sets_the_cookie_and_sign_out_deletes_it(page_env: str, db: Database) -> None:
    make_actor(db, make_tenant(db), Role.manager, "mia")
    app = _sign_in(_app(), "mia", PASSWORD)
    change = app.session_state[COOKIE_CHANGE_KEY]
    assert change["method"] == "set" and change["options"]["sameSite"] == "strict"
    key = Settings(_env_file=None, dev_mode=True).require_cookie_key()  # type: ignore[call-arg]
    assert username_from_session_token(change["value"], key) == "mia"

    # AppTest reruns only the page after a navigation run, not app.py: the page's own gate
    # answers, and the gate of app.py is checked below with the state the click left.
    app = next(b for b in app.sidebar.button if b.label == "Sign out").click().run()
    assert "You are not signed in." in [e.value for e in app.error]
    assert ACTOR_KEY not in app.session_state and USERNAME_KEY not in app.session_state
    assert app.session_state[SIGNED_OUT_KEY] is True
    assert app.session_state[COOKIE_CHANGE_KEY] == {"method": "delete"}

    gate = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    gate.session_state[SIGNED_OUT_KEY] = True
    gate.session_state[COOKIE_CHANGE_KEY] = {"method": "delete"}
    gate = gate.run()
    assert gate.title[0].value == "Sign in to Leadflow"
    # The component answers only in a browser: the delete stays pending, drawn on every run.
    assert gate.run().session_state[COOKIE_CHANGE_KEY] == {"method": "delete"}
