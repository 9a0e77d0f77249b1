"""Page-side plumbing shared by every page: settings, the database, the signed-in actor, errors.

Pages call these instead of building their own; nothing here opens a session or builds SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import streamlit as st

from core.config import Settings
from core.db import Database, open_database
from core.errors import LeadflowError
from core.permissions import Actor, Permission

P = ParamSpec("P")
R = TypeVar("R")

ACTOR_KEY = "leadflow_actor"


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return Settings()


@st.cache_resource(show_spinner="Opening the database…")
def get_db() -> Database:
    """One Database (engine and pool) per server process, migrated on first use."""
    return open_database(get_settings())


def current_actor() -> Actor:
    """The signed-in actor; app.py sets it before any page runs."""
    actor = st.session_state.get(ACTOR_KEY)
    if actor is None:
        st.error("You are not signed in.")
        st.stop()
    return Actor(**actor)


def require_page(permission: Permission) -> Actor:
    """The actor, or a clear message and a stop when the role may not see this page."""
    actor = current_actor()
    if not actor.can(permission):
        st.error(f"Your role ({actor.role.value}) cannot open this page.")
        st.stop()
    return actor


@contextmanager
def user_errors() -> Iterator[None]:
    """Show errors a user can cause as a message on the page, never as a traceback."""
    try:
        yield
    except LeadflowError as exc:
        st.error(str(exc))


def run_action(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
    """Call a core service; on an error a user can cause, show it and return None."""
    try:
        return func(*args, **kwargs)
    except LeadflowError as exc:
        st.error(str(exc))
        return None
