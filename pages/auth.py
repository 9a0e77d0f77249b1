"""The login gate's parts, used by app.py (not pages of the navigation): the first-owner and
sign-in forms, the password form, and the signed sign-in cookie that keeps a person signed in
across reloads. The cookie names a server-side session (core.auth), checked on every page load.

The cookie is read from the request the session started with (`st.context.cookies`), so an
ordinary page load renders no component and triggers no extra rerun; the cookie component is
drawn only in the run that signs in (to set the cookie) or out (to delete it).
"""

from __future__ import annotations

from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from core.auth import MIN_PASSWORD_LENGTH, authenticate, change_own_password, create_first_owner
from core.config import Settings
from core.db import Database
from core.errors import LeadflowError
from core.permissions import Actor
from core.sign_in import SignIn, session_id_from_token, sign_out
from pages.common import ACTOR_KEY, get_db, show_error

# The server-side session id of this browser session's sign-in.
SESSION_KEY = "leadflow_session_id"
# A message for the sign-in form of the next run (after creating the owner or a password change).
NOTICE_KEY = "leadflow_notice"
# The server keeps a sign-in this long when no cookie keeps it (LEADFLOW_COOKIE_EXPIRY_DAYS=0).
COOKIELESS_SESSION_LIFETIME = timedelta(hours=12)
# Set by "Sign out": the cookie the session started with no longer signs anyone in.
SIGNED_OUT_KEY = "leadflow_signed_out"
# A cookie to set (sign-in) or delete (sign-out), pending until the browser has done it.
COOKIE_CHANGE_KEY = "leadflow_cookie_change"
# The frontend of extra-streamlit-components' cookie manager, declared here so that it is drawn
# only when a cookie changes (its own CookieManager class reads every cookie whenever it is
# created, and the answer reruns the page). Found, not imported: importing the package loads
# all its components, which the sign-in page would wait for.
_STX = find_spec("extra_streamlit_components")
if _STX is None or not _STX.submodule_search_locations:
    raise ImportError("extra-streamlit-components is not installed: pip install -r requirements.txt")
_cookie_component = components.declare_component(
    "leadflow_cookie",
    path=str(Path(_STX.submodule_search_locations[0]) / "CookieManager" / "frontend" / "build"),
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
            "Default country for phone numbers",
            COUNTRIES,
            index=0,
            help="Numbers without a country code are read as numbers of this country.",
        )
        name = st.text_input("Your name")
        username = st.text_input("Username", help="3 to 64 letters, digits, dots, dashes or underscores.")
        email = st.text_input("Email (optional)")
        password = st.text_input(
            "Password",
            type="password",
            help=f"{MIN_PASSWORD_LENGTH} to 128 characters; not your username, not a common password.",
        )
        repeat = st.text_input("Repeat the password", type="password")
        submitted = st.form_submit_button("Create the owner account", type="primary")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ; type them again.")
        return
    try:
        owner = create_first_owner(
            db,
            tenant_name=tenant,
            default_country=country,
            username=username,
            name=name,
            email=email,
            password=password,
        )
    except LeadflowError as exc:
        show_error(exc)
        return
    st.session_state[NOTICE_KEY] = f"Owner '{owner.username}' created. Sign in to continue."
    st.rerun()


def show_login_form(db: Database, settings: Settings) -> Actor | None:
    """The sign-in form; returns the actor once the password is right and the account is open.

    The form is drawn in a placeholder that is emptied on success, so the first page renders in
    the same run (no rerun: the cookie set in this run must reach the browser).
    """
    placeholder = st.empty()
    with placeholder.container():
        st.title("Sign in to Leadflow")
        notice = st.session_state.pop(NOTICE_KEY, None)
        if notice:
            st.success(notice)
        with st.form("login"):
            username = st.text_input("Username")
            password = st.text_input("Password", type="password")
            organisation = st.text_input(
                "Organisation",
                placeholder="Optional",
                help="Only needed when your username is used in more than one organisation.",
            )
            submitted = st.form_submit_button("Sign in", type="primary")
        if not submitted:
            return None
        try:
            actor = authenticate(
                db,
                username,
                password,
                max_failures=settings.login_max_failures,
                lock_minutes=settings.login_lock_minutes,
                organisation=organisation,
            )
        except LeadflowError as exc:
            show_error(exc)
            return None
    placeholder.empty()
    return actor


def show_password_form(db: Database, settings: Settings, actor: Actor, *, required: bool) -> None:
    """Change one's own password; `required` after a one-time or reset password, or a password
    that today's policy refuses. Success ends every session: the person signs in again."""
    if required:
        st.title("Choose a new password")
        st.info(
            "Your password was set by an admin, or no longer meets the password rules: "
            "choose your own before you continue. The current password is the one you just "
            "signed in with."
        )
    with st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password")
        new = st.text_input(
            "New password",
            type="password",
            help=f"{MIN_PASSWORD_LENGTH} to 128 characters; not your username, not a common "
            "password. A few unrelated words make a good one.",
        )
        repeat = st.text_input("Repeat the new password", type="password")
        submitted = st.form_submit_button("Change the password", type="primary")
    if not submitted:
        return
    if new != repeat:
        st.error("The two new passwords differ; type them again.")
        return
    try:
        change_own_password(
            db,
            actor,
            current_password=current,
            new_password=new,
            max_failures=settings.login_max_failures,
            lock_minutes=settings.login_lock_minutes,
        )
    except LeadflowError as exc:
        show_error(exc)
        return
    forget_sign_in()
    st.session_state[NOTICE_KEY] = (
        "Password changed, and every sign-in of your account ended. Sign in with the new password."
    )
    st.rerun()


def signed_in_session_id(settings: Settings, cookie_key: str) -> str | None:
    """This session's sign-in, or the one a genuine sign-in cookie names (unless signed out since).

    Whether it is still live is checked against the database by the caller, on every run.
    """
    session_id = st.session_state.get(SESSION_KEY)
    if session_id:
        return str(session_id)
    if st.session_state.get(SIGNED_OUT_KEY):
        return None
    token = st.context.cookies.get(settings.cookie_name)
    return session_id_from_token(token, cookie_key)


def session_lifetime(settings: Settings) -> timedelta:
    """How long a new sign-in lasts: the cookie's lifetime, or half a day without a cookie."""
    if settings.cookie_expiry_days > 0:
        return timedelta(days=settings.cookie_expiry_days)
    return COOKIELESS_SESSION_LIFETIME


def keep_sign_in(session_id: str) -> None:
    """This browser session is signed in by `session_id` (a live one, just checked)."""
    st.session_state[SESSION_KEY] = session_id


def remember_sign_in(sign_in: SignIn, settings: Settings) -> None:
    """Keep the new sign-in for this session and, by the cookie, for later ones."""
    st.session_state[SESSION_KEY] = sign_in.session_id
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.session_state.pop(COOKIE_CHANGE_KEY, None)
    if settings.cookie_expiry_days > 0:  # 0: no cookie, every new browser session signs in
        st.session_state[COOKIE_CHANGE_KEY] = {
            "method": "set",
            "value": sign_in.token,
            "options": {"path": "/", "expires": sign_in.expires_at.isoformat(), "sameSite": "strict"},
        }


def forget_sign_in() -> None:
    """Forget this browser session's sign-in; the cookie is deleted in the browser."""
    for key in (SESSION_KEY, ACTOR_KEY):
        st.session_state.pop(key, None)
    st.session_state[SIGNED_OUT_KEY] = True
    st.session_state[COOKIE_CHANGE_KEY] = {"method": "delete"}


def sign_out_everywhere() -> None:
    """The "Sign out" button: end every session of the account (every browser), then this one's."""
    session_id = st.session_state.get(SESSION_KEY)
    if session_id:
        sign_out(get_db(), str(session_id))
    forget_sign_in()


def sync_sign_in_cookie(settings: Settings) -> None:
    """Draw the cookie component while a set or delete is pending, until the browser confirms it.

    Drawn again on every run until then: a component removed before its frame has loaded
    would never change the cookie.
    """
    change = st.session_state.get(COOKIE_CHANGE_KEY)
    if not change:
        return
    st.html(_HIDE_EMPTY_FRAMES)
    done = _cookie_component(
        cookie=settings.cookie_name, key=f"leadflow_cookie_{change['method']}", default=False, **change
    )
    if done:
        st.session_state.pop(COOKIE_CHANGE_KEY, None)
