"""Admin page, audit log: who did what, filtered by user, action and days, paged in the database."""

from __future__ import annotations

import streamlit as st

from core import admin
from core.db import Database
from core.permissions import Actor
from core.text import plural
from pages.common import run_action

PAGE_KEY = "audit_page"


def _first_page() -> None:
    st.session_state[PAGE_KEY] = 1


def show(db: Database, actor: Actor) -> None:
    options = admin.audit_filter_options(db, actor)
    user_column, action_column, dates_column = st.columns(3)
    # Labels from dicts, not lambdas: widget settings must pickle (serializable session state).
    user_labels: dict[int | None, str] = {None: "everyone", **dict(options.users.items())}
    action_labels: dict[str | None, str] = {None: "any", **{a: a for a in options.actions}}
    user_id = user_column.selectbox("User", list(user_labels), key="audit_user",
                                    on_change=_first_page, format_func=user_labels.__getitem__)
    action = action_column.selectbox("Action", list(action_labels), key="audit_action",
                                     on_change=_first_page, format_func=action_labels.__getitem__)
    days = dates_column.date_input("Days (UTC)", value=[], key="audit_days", on_change=_first_page)
    size_column, page_column = st.columns(2)
    page_size = size_column.selectbox("Per page", admin.AUDIT_PAGE_SIZES, index=1,
                                      key="audit_page_size", on_change=_first_page)
    page = page_column.number_input("Page", min_value=1, value=1, step=1, key=PAGE_KEY)
    since, until = (tuple(days) + (None, None))[:2] if isinstance(days, tuple) else (days, days)
    audit = run_action(admin.query_audit_log, db, actor, user_id=user_id, action=action,
                       since=since, until=until, page=int(page), page_size=page_size)
    if audit is not None:
        st.caption(f"{plural(audit.total, 'entry')} · page {audit.page} of {audit.pages}")
        st.dataframe(audit.entries, hide_index=True)
