"""The login gate's parts, used by app.py (not pages of the navigation): the first-owner and
sign-in forms, and the signed sign-in cookie that keeps a person signed in across reloads.

The cookie is read from the request the session started with (`st.context.cookies`), so an
ordinary page load renders no component and triggers no extra rerun; the cookie component is
drawn only in the run that signs in (to set the cookie) or out (to delete it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import extra_streamlit_components as stx
import streamlit as st
import streamlit.components.v1 as components

from core.auth import authenticate, create_first_owner, session_token, username_from_session_token
from core.config import Settings
from core.db import Database
from core.errors import LeadflowError
from core.permissions import Actor
from pages.common import ACTOR_KEY

# The signed-in username of this browser session.
USERNAME_KEY = "leadflow_username"
# Set by "Sign out": the cookie the session started with no longer signs anyone in.
SIGNED_OUT_KEY = "leadflow_signed_out"
# A cookie to set (sign-in) or delete (sign-out), pending until the browser has done it.
COOKIE_CHANGE_KEY = "leadflow_cookie_change"
# The frontend of extra-streamlit-components' cookie manager, declared here so that it is drawn
# only when a cookie changes (its own CookieManager class reads every cookie whenever it is
# created, and the answer reruns the page).
_cookie_component = components.declare_component(
    "leadflow_cookie", path=str(Path(stx.__file__).parent / "CookieManager" / "frontend" / "build")
)
_HIDE_EMPTY_FRAMES = "<style>.element-container:has(iframe[height='0']) { display: none; }</style>"

COUNTRIES = ["US", "CA", "GB", "IE", "DE", "FR", "NL", "ES", "IT", "AU", "NZ", "IN", "SG", "ZA", "BR", "MX"]


def show_first_owner_form(db: Database) -> None:
    """The one-time screen of an empty database: create the first tenant and its owner."""
    st.title("Welcome to Leadflow")
    st.write(
        "There is no account yet. Create your organisation and its **owner** account; "
        "the owner then invites the rest of the team from the Admin page."
    )
    with st.form("first_owner"):
        tenant = st.text_input("Organisation name", placeholder="Acme Inc.")
        country = st.selectbox(
            "Default country for phone numbers", COUNTRIES, index=0,
            help="Numbers without a country code are read as numbers of this country.",
        )
        name = st.text_input("Your name")
        username = st.text_input("Username", help="3 to 64 letters, digits, dots, dashes or underscores.")
        email = st.text_input("Email (optional)")
        password = st.text_input("Password", type="password", help="10 to 128 characters.")
        repeat = st.text_input("Repeat the password", type="password")
        submitted = st.form_submit_button("Create the owner account", type="primary")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ; type them again.")
        return
    try:
        owner = create_first_owner(db, tenant_name=tenant, default_country=country,
                                   username=username, name=name, email=email, password=password)
    except LeadflowError as exc:
        st.error(str(exc))
        return
    st.session_state["leadflow_notice"] = f"Owner '{owner.username}' created. Sign in to continue."
    st.rerun()


def show_login_form(db: Database, settings: Settings) -> Actor | None:
    """The sign-in form; returns the actor once the password is right and the account is open.

    The form is drawn in a placeholder that is emptied on success, so the first page renders in
    the same run (no rerun: the cookie set in this run must reach the browser).
    """
    placeholder = st.empty()
    with placeholder.container():
        st.title("Sign in to Leadflow")
        notice = st.session_state.pop("leadflow_notice", None)
        if notice:
            st.success(notice)
        with st.form("login"):
            username = st.text_input("Username")
            password = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if not submitted:
            return None
        try:
            actor = authenticate(db, username, password, max_failures=settings.login_max_failures,
                                 lock_minutes=settings.login_lock_minutes)
        except LeadflowError as exc:
            st.error(str(exc))
            return None
    placeholder.empty()
    return actor


def signed_in_username(settings: Settings, cookie_key: str) -> str | None:
    """This session's user, or the one a valid sign-in cookie names (unless signed out since)."""
    username = st.session_state.get(USERNAME_KEY)
    if username:
        return str(username)
    if st.session_state.get(SIGNED_OUT_KEY):
        return None
    token = st.context.cookies.get(settings.cookie_name)
    return username_from_session_token(token, cookie_key)


def remember_sign_in(username: str, settings: Settings, cookie_key: str) -> None:
    """Keep `username` signed in for this session and, by the cookie, for later ones."""
    st.session_state[USERNAME_KEY] = username
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.session_state.pop(COOKIE_CHANGE_KEY, None)
    if settings.cookie_expiry_days > 0:  # 0: no cookie, every new browser session signs in
        expires = datetime.now(UTC) + timedelta(days=settings.cookie_expiry_days)
        st.session_state[COOKIE_CHANGE_KEY] = {
            "method": "set",
            "value": session_token(username, cookie_key, expires),
            "options": {"path": "/", "expires": expires.isoformat(), "sameSite": "strict"},
        }


def forget_sign_in() -> None:
    """End the session's sign-in (the "Sign out" button); the cookie is deleted in the browser."""
    for key in (USERNAME_KEY, ACTOR_KEY):
        st.session_state.pop(key, None)
    st.session_state[SIGNED_OUT_KEY] = True
    st.session_state[COOKIE_CHANGE_KEY] = {"method": "delete"}


def sync_sign_in_cookie(settings: Settings) -> None:
    """Draw the cookie component while a set or delete is pending, until the browser confirms it.

    Drawn again on every run until then: a component removed before its frame has loaded
    would never change the cookie.
    """
    change = st.session_state.get(COOKIE_CHANGE_KEY)
    if not change:
        return
    st.html(_HIDE_EMPTY_FRAMES)
    done = _cookie_component(cookie=settings.cookie_name, key=f"leadflow_cookie_{change['method']}",
                             default=False, **change)
    if done:
        st.session_state.pop(COOKIE_CHANGE_KEY, None)
