"""Leadflow's entry point and router: page config, the login gate, and the pages the role may see."""

from __future__ import annotations

import dataclasses
import threading

import streamlit as st

from api.embedded import start_embedded_api
from core.auth import has_any_user
from core.config import ConfigError
from core.errors import LeadflowError
from core.logs import configure_logging
from core.sign_in import SignedIn, signed_in_user, start_session
from jobs.embedded import embedded_runner_failure, start_embedded_runner
from pages.auth import (
    forget_sign_in,
    keep_sign_in,
    remember_sign_in,
    session_lifetime,
    show_first_owner_form,
    show_login_form,
    show_password_form,
    sign_out_everywhere,
    signed_in_session_id,
    sync_sign_in_cookie,
)
from pages.common import ACTOR_KEY, get_db, get_settings, md, show_error
from pages.refused import show as show_refusal
from pages.registry import REFUSED_ICON, pages_for, refused_for

st.set_page_config(page_title="Leadflow", page_icon=":material/send:", layout="wide")

try:
    settings = get_settings()
    configure_logging(settings)
    cookie_key = settings.require_cookie_key()
    db = get_db()
    # Once per server process, off when workers do the work, and in the background once this
    # run has drawn its screen: the runner loads the model stack, which beside the sign-in
    # page's run would hold it back by seconds.
    start_embedded_runner(settings, after=threading.current_thread())
    # The HTTP service (webhooks, unsubscribe links) beside the dashboard, once per process.
    start_embedded_api(settings, after=threading.current_thread())
    if (runner_failure := embedded_runner_failure()) is not None:
        raise runner_failure
except (ConfigError, LeadflowError) as exc:
    show_error(f"Leadflow cannot start: {exc}")
    st.stop()

# Every run asks the database whether this sign-in is still live (one indexed query): sign-out,
# a password change or reset, deactivation and a lock end it at the next page load.
signed_in: SignedIn | None = None
if session_id := signed_in_session_id(settings, cookie_key):
    try:
        signed_in = signed_in_user(db, session_id)
        keep_sign_in(session_id)  # one restored from the cookie too, so Sign out can end it
    except LeadflowError:
        forget_sign_in()  # ended since: the cookie no longer signs in
sync_sign_in_cookie(settings)
if signed_in is None:
    if not has_any_user(db):  # asked only of a session not signed in, not on every rerun
        show_first_owner_form(db)
        st.stop()
    login = show_login_form(db, settings)
    if login is None:
        st.session_state.pop(ACTOR_KEY, None)
        st.stop()
    try:
        sign_in = start_session(db, login, key=cookie_key, lifetime=session_lifetime(settings))
        signed_in = signed_in_user(db, sign_in.session_id)
    except LeadflowError as exc:
        show_error(exc)
        st.stop()
    remember_sign_in(sign_in, settings)
    sync_sign_in_cookie(settings)
actor = signed_in.actor
if signed_in.password_change_required:
    # A one-time or reset password, or one today's policy refuses: no page before a new one.
    st.session_state.pop(ACTOR_KEY, None)
    show_password_form(db, settings, actor, required=True)
    st.button("Sign out", key="sign_out_required", on_click=sign_out_everywhere)
    st.stop()
st.session_state[ACTOR_KEY] = dataclasses.asdict(actor)
try:
    # Checked once signed in, not before the sign-in form: the readers load pandas, which that
    # form does not need (an XLSX upload checks again before it parses).
    from core.leads.xlsx import verify_xml_protection

    verify_xml_protection()
except ConfigError as exc:
    show_error(f"Leadflow cannot start: {exc}")
    st.stop()

with st.sidebar:
    st.caption(f"Signed in as **{md(actor.name)}** · {actor.role.value}")
    if settings.dev_mode:
        st.warning(
            "Development mode: login cookies are signed with a public key. "
            "Set LEADFLOW_COOKIE_KEY and turn LEADFLOW_DEV_MODE off in production.",
            icon=":material/construction:",
        )
    st.button(
        "Sign out", key="sign_out", on_click=sign_out_everywhere, help="Ends your sign-in in every browser."
    )

allowed = pages_for(actor)
refused = {spec.url_path: spec for spec in refused_for(actor)}
# A flat list: every page one click away in the top bar.
menu = [st.Page(p.script, title=p.title, icon=p.icon, url_path=p.url_path) for p in allowed]
# A page the role may not open is registered too, hidden from the menu, so that its URL (a
# bookmark, a shared link, the page open when an admin changed the role) says why instead of
# Streamlit's "Page not found"; it is never run.
menu.extend(
    st.Page(p.script, title=p.title, icon=REFUSED_ICON, url_path=p.url_path, visibility="hidden")
    for p in refused.values()
)
page = st.navigation(menu, position="top")
if page.url_path in refused:
    show_refusal(refused[page.url_path], actor, home=allowed[0])
else:
    page.run()
