"""Leadflow's entry point and router: page config, the login gate, and the pages the role may see."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.auth import actor_for_username, has_any_user
from core.config import ConfigError
from core.errors import LeadflowError
from core.leads.readers import verify_xml_protection
from core.logs import configure_logging
from core.permissions import Actor
from jobs.embedded import ensure_embedded_runner
from pages.auth import (
    forget_sign_in,
    remember_sign_in,
    show_first_owner_form,
    show_login_form,
    signed_in_username,
    sync_sign_in_cookie,
)
from pages.common import ACTOR_KEY, get_db, get_settings
from pages.registry import pages_for

st.set_page_config(page_title="Leadflow", page_icon=":material/send:", layout="wide")

try:
    settings = get_settings()
    configure_logging(settings)
    cookie_key = settings.require_cookie_key()
    verify_xml_protection()
    db = get_db()
    ensure_embedded_runner(settings)  # once per server process; off when workers do the work
except (ConfigError, LeadflowError) as exc:
    st.error(f"Leadflow cannot start: {exc}")
    st.stop()

actor: Actor | None = None
if username := signed_in_username(settings, cookie_key):
    try:
        actor = actor_for_username(db, username)
    except LeadflowError:
        forget_sign_in()  # deactivated or locked since: the cookie no longer signs in
sync_sign_in_cookie(settings)
if actor is None:
    if not has_any_user(db):  # asked only of a session not signed in, not on every rerun
        show_first_owner_form(db)
        st.stop()
    actor = show_login_form(db, settings)
    if actor is None:
        st.session_state.pop(ACTOR_KEY, None)
        st.stop()
    remember_sign_in(actor.username, settings, cookie_key)
    sync_sign_in_cookie(settings)
st.session_state[ACTOR_KEY] = dataclasses.asdict(actor)

with st.sidebar:
    st.caption(f"Signed in as **{actor.name}** · {actor.role.value}")
    if settings.dev_mode:
        st.warning("Development mode: login cookies are signed with a public key. "
                   "Set LEADFLOW_COOKIE_KEY and turn LEADFLOW_DEV_MODE off in production.",
                   icon=":material/construction:")
    st.button("Sign out", key="sign_out", on_click=forget_sign_in)

st.navigation(
    {
        section: [st.Page(p.script, title=p.title, icon=p.icon, url_path=p.url_path) for p in specs]
        for section, specs in pages_for(actor).items()
    },
    position="top",
).run()
