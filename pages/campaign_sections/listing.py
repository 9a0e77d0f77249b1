"""Campaigns page, the list: status, progress and spend of every campaign, and which one is open."""

from __future__ import annotations

import streamlit as st

from core.campaign_editor import campaign_table
from core.db import Database
from core.permissions import Actor, Permission
from pages.common import run_action
from pages.widgets import id_select

NEW = 0  # the selectbox option for a campaign not saved yet
SELECTED_KEY = "campaigns_selected"
ARCHIVED_KEY = "campaigns_show_archived"
FLASH_KEY = "campaigns_flash"  # a message for the next run, after an action that reruns the page
# Set by a save that created a campaign: the next run opens it (a widget's key may not be set
# once the widget exists in the run).
OPEN_NEXT_KEY = "campaigns_open_next"


def show(db: Database, actor: Actor) -> int | None:
    """The table of campaigns and the picker; returns the open campaign's id, NEW, or None."""
    archived = st.toggle("Show archived campaigns", key=ARCHIVED_KEY,
                         help="Archived campaigns are finished ones put out of the way; restore one "
                              "to list it again.")
    table = run_action(campaign_table, db, actor, archived=archived)
    if table is None:
        return None
    if table.empty and archived:
        st.info("No archived campaigns.")
    elif table.empty:
        st.info(
            "No campaigns yet."
            + (
                " Create the first one below."
                if actor.can(Permission.edit_campaigns)
                else " A manager creates them."
            )
        )
    else:
        st.container(key="campaigns_list").dataframe(
            table,
            hide_index=True,
            key="campaigns_table",
            column_config={
                "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
                # Money as text in the one format of every page ($0.0050, not $0.01).
                "spent_usd": None,
                "budget_usd": None,
                "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
            },
        )
    labels = {NEW: "New campaign…"} if actor.can(Permission.edit_campaigns) and not archived else {}
    labels |= {int(row.id): f"#{row.id} {row.name} ({row.status})" for row in table.itertuples()}
    if not labels:
        return None
    # An existing campaign first; a new one when there is none.
    default = int(table["id"].iloc[0]) if not table.empty else NEW
    return id_select.show(
        "Campaign", SELECTED_KEY, labels, default=default, force=st.session_state.pop(OPEN_NEXT_KEY, None)
    )
