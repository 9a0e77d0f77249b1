"""Page-side plumbing shared by every page: settings, the database, the signed-in actor, errors.

Pages call these instead of building their own; nothing here opens a session or builds SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import streamlit as st

from core.config import Settings
from core.db import Database, open_database
from core.errors import LeadflowError
from core.permissions import Actor, Permission
from core.text import sentence

P = ParamSpec("P")
R = TypeVar("R")

ACTOR_KEY = "leadflow_actor"

# What Streamlit's Markdown (CommonMark, GFM, LaTeX, directives) reads as syntax inside a line;
# a backslash before ASCII punctuation is CommonMark's own way to show the character as itself.
_SYNTAX = re.compile(r"[\\`*\[\]<>|~$]")  # code, emphasis, links, images, HTML, tables, LaTeX
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")  # emphasis; between letters (system_prompt) it is text
_DIRECTIVE = re.compile(r":(?=[A-Za-z/])")  # :red[...], :material/icon:, :emoji:, http://
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # "&#91;" would show as "["
_WWW = re.compile(r"\b(www)\.", re.IGNORECASE)  # www.host becomes a link
_BLOCK = re.compile(r"^(\s*)([#>+=-]|\d{1,9}(?=[.)]))")  # a heading, quote, list or rule
_LINE_BREAK = re.compile(r"[\r\n]+")


def md(value: object) -> str:
    """`value` (from a lead, a file or a model) made safe to put inside a line of Markdown.

    It shows as the very text it is: no image is fetched, and no link, colour, icon, formula or
    heading appears. Line breaks become spaces, so the value stays inside its line. Where a
    value stands alone, a widget that reads no Markdown (st.text, st.code, a dataframe cell)
    is better still.
    """
    text = _LINE_BREAK.sub(" ", "" if value is None else str(value))
    text = _SYNTAX.sub(lambda match: "\\" + match.group(0), text)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _DIRECTIVE.sub(r"\\:", text)
    text = _ENTITY.sub(r"\\&", text)
    text = _WWW.sub(r"\1\\.", text)
    block = _BLOCK.match(text)
    if block:
        marker = block.group(2)
        escaped = "\\" + marker if not marker.isdigit() else marker + "\\"
        text = block.group(1) + escaped + text[block.end() :]
    return text


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


def show_error(exc: LeadflowError | str) -> None:
    """An error a user can cause, in the dashboard's one voice (a sentence) and shown as typed.

    Messages quote files, leads and what the user typed ("Sales <sales@example.com>"): Markdown
    would read a value there as HTML, a link or a formula, so it is escaped.
    """
    st.error(md(sentence(exc)))


@contextmanager
def user_errors() -> Iterator[None]:
    """Show errors a user can cause as a message on the page, never as a traceback."""
    try:
        yield
    except LeadflowError as exc:
        show_error(exc)


def run_action(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
    """Call a core service; on an error a user can cause, show it and return None."""
    try:
        return func(*args, **kwargs)
    except LeadflowError as exc:
        show_error(exc)
        return None
