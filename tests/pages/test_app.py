"""app.py: the first-owner screen, the login gate with its server-side sessions and required
password changes, the Account page, and the navigation each role gets."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from sqlalchemy import update
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from core import admin
from core.auth import authenticate, has_any_user, login_refused_message
from core.config import DEV_COOKIE_KEY, ROOT
from core.db import Database
from core.errors import LoginRefused
from core.models import Role, UserSession
from core.permissions import Actor, Permission
from core.sign_in import SessionEnded, session_id_from_token, sign_out, signed_in_user, start_session
from core.text import sentence
from pages.auth import COOKIE_CHANGE_KEY, NOTICE_KEY, SESSION_KEY, SIGNED_OUT_KEY
from pages.common import ACTOR_KEY
from pages.registry import ABILITIES, REFUSED_ICON, lost_by, pages_for
from tests.factories import PASSWORD, make_actor, make_tenant
from tests.pages.conftest import table
from tests.pages.markdown_checks import is_live


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()


def _fill_owner_form(app: AppTest, **overrides: str) -> AppTest:
    values = {
        "Organisation name": "Acme",
        "Your name": "Olga Owner",
        "Username": "olga",
        "Email (optional)": "olga@example.com",
        "Password": PASSWORD,
        "Repeat the password": PASSWORD,
    }
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
    refused = sentence(login_refused_message(5, 15))  # shown as a sentence, in the one voice
    app = _app()
    for _ in range(5):
        app = _sign_in(app, "ann", "wrong password")
        assert app.error[0].value == refused
    app = _sign_in(app, "ann", PASSWORD)  # locked: the right password gets the same answer
    assert app.error[0].value == refused
    assert ACTOR_KEY not in app.session_state and SESSION_KEY not in app.session_state


def test_an_unknown_username_gets_the_wrong_password_answer(page_env: str, db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    unknown = _sign_in(_app(), "nobody.here", PASSWORD).error[0].value
    wrong = _sign_in(_app(), "ann", "wrong password").error[0].value
    assert unknown == wrong == sentence(login_refused_message(5, 15))


def test_a_username_in_two_organisations_signs_in_with_its_organisation(page_env: str, db: Database) -> None:
    make_actor(db, make_tenant(db, "Acme"), Role.analyst, "olivia")
    globex = make_actor(db, make_tenant(db, "Globex"), Role.manager, "olivia")
    app = _sign_in(_app(), "olivia", PASSWORD)
    assert app.error[0].value == "This username exists in more than one organisation: enter yours."
    assert ACTOR_KEY not in app.session_state
    next(t for t in app.text_input if t.label == "Organisation").input("globex")
    app = _sign_in(app, "olivia", PASSWORD)
    assert not app.exception and not app.error
    assert app.session_state[ACTOR_KEY]["tenant_id"] == globex.tenant_id
    assert app.session_state[ACTOR_KEY]["role"] == "manager"


def test_the_organisation_field_is_optional_for_a_username_of_one_organisation(
    page_env: str, db: Database
) -> None:
    make_actor(db, make_tenant(db, "Acme"), Role.analyst, "ann")
    app = _app()
    organisation = next(t for t in app.text_input if t.label == "Organisation")
    assert "more than one organisation" in (organisation.help or "")
    app = _sign_in(app, "ann", PASSWORD)
    assert app.session_state[ACTOR_KEY]["username"] == "ann"


def _registered_titles(app: AppTest) -> set[str]:
    # AppTest keeps the pages the last run registered with st.navigation; those the role may not
    # open are registered too, hidden and locked, only so that their URL explains the refusal.
    return {info["page_name"] for info in app._registered_pages.values() if info["icon"] != REFUSED_ICON}


# Written out, not derived from PAGES: this is the role table, so a wrong permission on a
# page spec fails here instead of being copied into the expectation.
ANALYST_PAGES = {"Overview", "Campaigns", "Inbox", "Run monitor", "Costs", "Reports"}  # Inbox: issue 14
MANAGER_PAGES = ANALYST_PAGES | {"Review queue", "Leads"}  # managers read leads (issue 11)
ADMIN_PAGES = MANAGER_PAGES | {"Admin"}
# Every role has its Account page (its own password).
ANALYST_PAGES, MANAGER_PAGES, ADMIN_PAGES = (
    p | {"Account"} for p in (ANALYST_PAGES, MANAGER_PAGES, ADMIN_PAGES)
)
ROLE_PAGES = {
    Role.analyst: ANALYST_PAGES,
    Role.manager: MANAGER_PAGES,
    Role.admin: ADMIN_PAGES,
    Role.owner: ADMIN_PAGES,
}


@pytest.mark.parametrize("role", list(Role))
def test_navigation_shows_exactly_the_roles_pages(page_env: str, db: Database, role: Role) -> None:
    make_actor(db, make_tenant(db), role, "user1")
    app = _sign_in(_app(), "user1", PASSWORD)
    assert not app.exception
    assert _registered_titles(app) == ROLE_PAGES[role]


def test_analyst_gets_no_admin_pages() -> None:
    analyst = Actor(user_id=1, tenant_id=1, role=Role.analyst)
    titles = {spec.title for spec in pages_for(analyst)}
    assert titles == ANALYST_PAGES  # the table, written out above: no Leads, Admin, Review


@pytest.mark.parametrize("role", list(Role))
def test_every_page_is_one_click_away_in_the_menu(
    page_env: str, db: Database, monkeypatch: pytest.MonkeyPatch, role: Role
) -> None:
    # Sections are drop-down menus in the top bar (Admin and Account were each alone in one): the
    # menu is one flat list of the role's pages, in the order of a day's work.
    menus: list[object] = []
    navigation = st.navigation

    def recorded(pages: object, **options: object) -> object:
        menus.append(pages)
        return navigation(pages, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(st, "navigation", recorded)
    make_actor(db, make_tenant(db), role, "user1")
    app = _sign_in(_app(), "user1", PASSWORD)
    assert not app.exception
    menu = menus[-1]
    assert isinstance(menu, list)  # no sections
    shown = [p.title for p in menu if p.visibility != "hidden"]
    order = ["Overview", "Campaigns", "Review queue", "Inbox", "Run monitor", "Leads", "Costs", "Reports",
             "Admin", "Account"]
    assert shown == [title for title in order if title in ROLE_PAGES[role]]


def test_missing_cookie_key_outside_dev_mode_is_refused(page_env: str, monkeypatch) -> None:
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "false")
    app = _app()
    assert "LEADFLOW_COOKIE_KEY" in app.error[0].value


PLACEHOLDER = "replace-me-with-a-long-random-string-of-48-characters"


@pytest.mark.parametrize("key", [DEV_COOKIE_KEY, "z" * 48, PLACEHOLDER])
def test_a_public_or_weak_cookie_key_outside_dev_mode_is_refused(
    page_env: str, monkeypatch, key: str
) -> None:
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "false")
    monkeypatch.setenv("LEADFLOW_COOKIE_KEY", key)
    app = _app()
    assert "Leadflow cannot start: LEADFLOW_COOKIE_KEY" in app.error[0].value
    assert "secrets.token_urlsafe(48)" in app.error[0].value
    assert not app.text_input  # no sign-in form


def test_a_random_cookie_key_outside_dev_mode_opens_the_sign_in(
    page_env: str, db: Database, monkeypatch
) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "false")
    monkeypatch.setenv("LEADFLOW_COOKIE_KEY", secrets.token_urlsafe(48))
    assert _app().title[0].value == "Sign in to Leadflow"


def _restored(db: Database, session_id: str) -> AppTest:
    """A new run of app.py in a browser session whose sign-in (from the cookie or an earlier
    run) is `session_id`."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    app.session_state[SESSION_KEY] = session_id
    return app.run()


def _end(db: Database, how: str, owner: Actor, mia: Actor) -> None:
    if how == "signed out elsewhere":
        other = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1))
        sign_out(db, other.session_id)
    elif how == "deactivated":
        admin.set_user_active(db, owner, mia.user_id, False)
    elif how == "locked":
        for _ in range(5):
            with pytest.raises(LoginRefused):
                authenticate(db, "mia", "wrong password", max_failures=5, lock_minutes=15)
    elif how == "password reset":
        admin.reset_password(db, owner, mia.user_id)
    elif how == "expired":
        with db.session(system=True) as s, s.begin():
            s.execute(update(UserSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))


@pytest.mark.parametrize(
    "how", [None, "signed out elsewhere", "deactivated", "locked", "password reset", "expired"]
)
def test_a_restored_session_is_checked_against_the_database(
    page_env: str, db: Database, how: str | None
) -> None:
    """A sign-in ends at the next page load once it is revoked, expired, or its account locked."""
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia = make_actor(db, owner.tenant_id, Role.manager, "mia")
    session_id = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1)).session_id
    if how is not None:
        _end(db, how, owner, mia)
    app = _restored(db, session_id)
    assert not app.exception
    assert app.title[0].value == ("Overview" if how is None else "Sign in to Leadflow")
    # An ended sign-in's cookie is deleted, and no longer counts in this session.
    assert (SESSION_KEY in app.session_state) is (how is None)
    if how is not None:
        assert app.session_state[COOKIE_CHANGE_KEY] == {"method": "delete"}
        assert app.session_state[SIGNED_OUT_KEY] is True
        assert ACTOR_KEY not in app.session_state


def test_a_role_change_shows_at_the_next_page_load(page_env: str, db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia = make_actor(db, owner.tenant_id, Role.admin, "mia")
    session_id = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1)).session_id
    assert _registered_titles(_restored(db, session_id)) == ADMIN_PAGES
    admin.change_role(db, owner, mia.user_id, Role.analyst)
    assert _registered_titles(_restored(db, session_id)) == ANALYST_PAGES


def test_sign_in_sets_the_cookie_and_sign_out_ends_the_session(page_env: str, db: Database) -> None:
    mia = make_actor(db, make_tenant(db), Role.manager, "mia")
    elsewhere = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1))
    app = _sign_in(_app(), "mia", PASSWORD)
    change = app.session_state[COOKIE_CHANGE_KEY]
    assert change["method"] == "set" and change["options"]["sameSite"] == "strict"
    session_id = session_id_from_token(change["value"], DEV_COOKIE_KEY)
    assert session_id == app.session_state[SESSION_KEY]
    assert signed_in_user(db, session_id).actor.username == "mia"

    # AppTest reruns only the page after a navigation run, not app.py: the page's own gate
    # answers, and the gate of app.py is checked below with the state the click left.
    app = next(b for b in app.sidebar.button if b.label == "Sign out").click().run()
    assert "You are not signed in." in [e.value for e in app.error]
    assert ACTOR_KEY not in app.session_state and SESSION_KEY not in app.session_state
    assert app.session_state[SIGNED_OUT_KEY] is True
    assert app.session_state[COOKIE_CHANGE_KEY] == {"method": "delete"}
    # The session is revoked on the server: a copy of the cookie signs nobody in, and neither
    # does the user's sign-in in another browser.
    for ended in (session_id, elsewhere.session_id):
        with pytest.raises(SessionEnded):
            signed_in_user(db, ended)

    gate = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    gate.session_state[SIGNED_OUT_KEY] = True
    gate.session_state[COOKIE_CHANGE_KEY] = {"method": "delete"}
    gate = gate.run()
    assert gate.title[0].value == "Sign in to Leadflow"
    # The component answers only in a browser: the delete stays pending, drawn on every run.
    assert gate.run().session_state[COOKIE_CHANGE_KEY] == {"method": "delete"}


def _fill_password_form(app: AppTest, current: str, new: str, repeat: str | None = None) -> AppTest:
    values = {"Current password": current, "New password": new, "Repeat the new password": repeat or new}
    for label, value in values.items():
        next(t for t in app.text_input if t.label == label).input(value)
    return next(b for b in app.button if b.label == "Change the password").click().run()


def test_a_reset_password_signs_in_to_a_required_password_change(page_env: str, db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia = make_actor(db, owner.tenant_id, Role.manager, "mia")
    temporary = admin.reset_password(db, owner, mia.user_id).temporary_password
    app = _sign_in(_app(), "mia", temporary)
    assert not app.exception
    assert app.title[0].value == "Choose a new password"
    # No navigation yet (without it AppTest lists the pages/ scripts by file name, not title).
    assert ACTOR_KEY not in app.session_state and "Overview" not in _registered_titles(app)
    app = _fill_password_form(app, temporary, "short")
    assert "at least 10 characters" in app.error[0].value
    app = _fill_password_form(app, temporary, "violet ladder orbit 93", "something else")
    assert "differ" in app.error[0].value
    app = _fill_password_form(app, temporary, "violet ladder orbit 93")
    assert app.title[0].value == "Sign in to Leadflow"
    assert "Password changed" in app.success[0].value
    app = _sign_in(app, "mia", "violet ladder orbit 93")
    assert app.title[0].value == "Overview"


def test_the_account_page_lists_sign_ins_and_changes_ones_own_password(page_env: str, db: Database) -> None:
    mia = make_actor(db, make_tenant(db), Role.analyst, "mia")
    session_id = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1)).session_id
    start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1))  # another browser
    app = AppTest.from_file(str(ROOT / "pages/account.py"), default_timeout=30)
    app.session_state[ACTOR_KEY] = dataclasses.asdict(mia)
    app.session_state[SESSION_KEY] = session_id
    app = app.run()
    assert app.title[0].value == "Your account"
    assert list(table(app, "account_sessions")["browser"]) == ["", "this one"]  # newest first
    app = _fill_password_form(app, "not my password", "violet ladder orbit 93")
    assert "current password is wrong" in app.error[0].value
    app = _fill_password_form(app, PASSWORD, "1234567890")
    assert "most common" in app.error[0].value
    signed_in_user(db, session_id)  # nothing changed yet
    app = _fill_password_form(app, PASSWORD, "violet ladder orbit 93")
    assert "Password changed" in app.session_state[NOTICE_KEY]
    assert ACTOR_KEY not in app.session_state
    with pytest.raises(SessionEnded):
        signed_in_user(db, session_id)
    actor = authenticate(db, "mia", "violet ladder orbit 93", max_failures=5, lock_minutes=15)
    assert actor.username == "mia"


def test_signing_out_of_a_session_restored_from_the_cookie_ends_it(
    page_env: str, db: Database, monkeypatch
) -> None:
    """A new browser session signed in by the cookie alone: its Sign out revokes that session."""
    import streamlit as st

    mia = make_actor(db, make_tenant(db), Role.manager, "mia")
    sign_in = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1))
    # AppTest sends no cookies: the request's cookie is read as this token.
    cookies = {"leadflow_auth": sign_in.token}
    monkeypatch.setattr(type(st.context), "cookies", property(lambda _: cookies))
    app = _app()
    assert app.title[0].value == "Overview"
    app = next(b for b in app.sidebar.button if b.label == "Sign out").click().run()
    with pytest.raises(SessionEnded):
        signed_in_user(db, sign_in.session_id)


def test_an_error_quoting_what_was_typed_shows_it_whole_as_a_sentence(page_env: str,
                                                                       db: Database) -> None:
    """Markdown read `<sales@example.com>` as an HTML tag and dropped it from the message."""
    typed = "Sales <sales@example.com>"
    app = _fill_owner_form(_app(), **{"Email (optional)": typed})
    (error,) = [e.value for e in app.error]
    assert not is_live(error, "<") and "sales@example.com" in error
    assert error[0].isupper() and error.endswith(".")
    assert not has_any_user(db)


@pytest.fixture
def routed_by_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run starts in app.py, as on a served app once any session has called st.navigation.

    Streamlit decides per process whether a folder named pages/ is an old-style page list; AppTest
    starts that guess afresh on every run, which would run a requested page's script directly and
    bypass app.py's router.
    """
    create = PagesManager.__init__

    def as_served(self: PagesManager, *args: object, **kwargs: object) -> None:
        create(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", as_served)


@pytest.mark.parametrize(
    ("role", "page", "who"),
    [
        (Role.analyst, "pages/admin.py", "admins and owners"),
        (Role.analyst, "pages/leads.py", "managers, admins and owners"),
        (Role.analyst, "pages/review.py", "managers, admins and owners"),
    ],
)
def test_a_forbidden_page_says_the_role_cannot_open_it(
    page_env: str, db: Database, routed_by_app: None, role: Role, page: str, who: str
) -> None:
    make_actor(db, make_tenant(db), role, "user1")
    app = _sign_in(_app(), "user1", PASSWORD)
    app.switch_page(page).run()
    assert not app.exception
    shown = " ".join(str(w.value) for w in app.warning)
    assert "Your role cannot open this page" in shown
    assert f"signed in as {'an' if role == Role.analyst else 'a'} {role.value}" in shown
    assert who in shown
    # Nothing of the page itself runs: no title of it, no widget of it.
    assert [t.value for t in app.title] == []


def test_a_page_lost_by_a_role_change_says_so_at_the_next_page_load(
    page_env: str, db: Database, routed_by_app: None
) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia = make_actor(db, owner.tenant_id, Role.admin, "mia")
    session_id = start_session(db, mia, key=DEV_COOKIE_KEY, lifetime=timedelta(days=1)).session_id
    app = _restored(db, session_id)
    app.switch_page("pages/admin.py").run()
    assert [t.value for t in app.title] == ["Admin"]
    admin.change_role(db, owner, mia.user_id, Role.manager)
    app.run()
    assert not app.exception
    assert "Your role cannot open this page" in " ".join(str(w.value) for w in app.warning)
    assert "Admin" not in _registered_titles(app)


def test_every_permission_has_words_for_what_a_lower_role_loses() -> None:
    assert set(ABILITIES) == set(Permission)
    assert lost_by(Role.admin, Role.manager) == (
        ["Admin"],
        [
            "import, edit and erase leads",
            "manage the suppression list",
            "manage users",
            "change the organisation's settings",
            "read the audit log",
            "create and revoke API keys",
            "manage outgoing webhooks",
        ],
    )
    assert lost_by(Role.analyst, Role.owner) == ([], [])
    assert lost_by(Role.manager, Role.analyst)[0] == ["Review queue", "Leads"]
