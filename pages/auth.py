"""The sign-in and first-owner forms shown by app.py's login gate (not pages of the navigation)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.auth import authenticate, create_first_owner
from core.config import Settings
from core.db import Database
from core.errors import LeadflowError
from core.permissions import Actor
from pages.common import ACTOR_KEY

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
    st.session_state[ACTOR_KEY] = dataclasses.asdict(actor)
    return actor
