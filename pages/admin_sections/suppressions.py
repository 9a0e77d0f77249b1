"""Admin, suppression list: who is never messaged, added by hand or from a provider's export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.db import Database
from core.permissions import Actor
from core.suppressions import add_suppression, import_suppressions, list_suppressions, remove_suppression
from core.text import plural
from pages.common import run_action

FLASH_KEY = "suppressions_flash"
CHANNELS = {"": "Both channels", "sms": "SMS (phone numbers)", "email": "Email"}
REASONS = {"stop": "STOP replies", "unsubscribe": "Unsubscribes", "bounce": "Bounces",
           "manual": "Do-not-contact list"}


def _channel_label(channel: str) -> str:
    # A module-level function, not a lambda: session state must stay picklable.
    return CHANNELS[channel]


def _reason_label(reason: str) -> str:
    return REASONS[reason]


def _add_form(db: Database, actor: Actor) -> None:
    with st.form("suppression_add", clear_on_submit=True):
        channel_column, address_column = st.columns([1, 3])
        channel = channel_column.selectbox("Channel", ["sms", "email"], format_func=_channel_label)
        address = address_column.text_input("Phone number or email to suppress")
        if st.form_submit_button("Suppress"):
            added = run_action(add_suppression, db, actor, channel=channel, address=address)
            if added is not None:
                st.success("Suppressed." if added else "That address was suppressed already.")


def _import_form(db: Database, actor: Actor) -> None:
    with st.form("suppression_import", clear_on_submit=True):
        upload = st.file_uploader("A list to suppress (CSV or XLSX: a STOP export, a do-not-contact "
                                  "list)", type=["csv", "txt", "xlsx"])
        channel_column, reason_column = st.columns(2)
        channel = channel_column.selectbox("Channel", ["sms", "email"], format_func=_channel_label,
                                           key="suppression_import_channel")
        reason = reason_column.selectbox("What the list is", list(REASONS), index=3,
                                         format_func=_reason_label)
        if st.form_submit_button("Import the list") and upload is not None:
            summary = run_action(import_suppressions, db, actor, file_name=upload.name,
                                 data=upload.getvalue(), channel=channel, reason=reason)
            if summary is not None:
                st.success(f"{plural(summary.added, 'address')} added, {summary.already:,} already "
                           f"suppressed, {plural(summary.rejected, 'row')} rejected.")
                if summary.rejects:
                    st.dataframe(pd.DataFrame(summary.rejects).head(50), hide_index=True)


def show(db: Database, actor: Actor) -> None:
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    _add_form(db, actor)
    _import_form(db, actor)
    channel_column, search_column, page_column = st.columns([1, 2, 1])
    channel = channel_column.selectbox("Show", list(CHANNELS), format_func=_channel_label,
                                       key="suppressions_channel")
    search = search_column.text_input("Search", key="suppressions_search")
    page_number = page_column.number_input("Page", min_value=1, value=1, key="suppressions_page")
    page = run_action(list_suppressions, db, actor, channel=channel or None, search=search,
                      page=int(page_number))
    if page is None:
        return
    st.caption(f"{plural(page.total, 'suppressed address')} · page {page.page} of {page.pages}")
    st.dataframe(pd.DataFrame([vars(r) for r in page.rows]), hide_index=True)
    removable = {r.id: f"{r.address} ({r.channel})" for r in page.rows if r.reason == "manual"}
    if removable:
        chosen = st.selectbox("Added by hand by mistake?", list(removable),
                              format_func=removable.__getitem__, key="suppressions_remove_pick")
        if st.button("Remove this suppression", key="suppressions_remove"):
            removed = run_action(remove_suppression, db, actor, chosen)
            if removed is not None:
                st.session_state[FLASH_KEY] = f"{removed} can be messaged again."
                st.rerun()  # the list above must not show it any more
