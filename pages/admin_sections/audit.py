"""Admin page, audit log: who did what, filtered by user, action and days, paged in the database."""

from __future__ import annotations

import io
from datetime import date
from functools import partial

import streamlit as st

from core import admin
from core.analytics.activity import ExportFormat, export_audit_log
from core.analytics.period import Period
from core.db import Database
from core.permissions import Actor
from core.text import plural
from pages.common import run_action

PAGE_KEY = "audit_page"
EXPORTS: tuple[tuple[ExportFormat, str, str], ...] = (
    ("csv", "Export CSV", "text/csv"), ("jsonl", "Export JSON lines", "application/x-ndjson"))


def _export(db: Database, actor: Actor, period: Period, user_id: int | None, action: str | None,
            fmt: ExportFormat) -> bytes:
    """The filtered log as a file, built when the button is clicked (the rows are read from the
    database in pages; `python -m core.cli audit export` writes a long log straight to a file)."""
    out = io.StringIO(newline="")
    export_audit_log(db, actor, out, period=period, user_id=user_id, action=action, fmt=fmt)
    return out.getvalue().encode("utf-8-sig" if fmt == "csv" else "utf-8")


def _downloads(db: Database, actor: Actor, since: date | None, until: date | None,
               user_id: int | None, action: str | None) -> None:
    period = Period(since, until)
    for column, (fmt, label, mime) in zip(st.columns(len(EXPORTS)), EXPORTS, strict=True):
        column.download_button(label, partial(_export, db, actor, period, user_id, action, fmt),
                               f"leadflow-audit-{period.slug()}.{fmt}", mime=mime,
                               key=f"audit_export_{fmt}",
                               help="Every entry these filters select, on every page, oldest first.")


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
        st.container(key="audit_table").dataframe(audit.entries, hide_index=True)
        _downloads(db, actor, since, until, user_id, action)
