"""Campaigns page, housekeeping: clone the open campaign, archive or restore it, delete a draft."""

from __future__ import annotations

import streamlit as st

from core.campaign_housekeeping import (
    FINISHED,
    archive_campaign,
    clone_campaign,
    delete_campaign,
    restore_campaign,
)
from core.campaigns import CampaignView
from core.db import Database
from core.permissions import Actor, Permission
from pages.campaign_sections.listing import FLASH_KEY, OPEN_NEXT_KEY
from pages.common import md, run_action


def _done(message: str, open_next: int | None = None) -> None:
    st.session_state[FLASH_KEY] = message
    if open_next is not None:
        st.session_state[OPEN_NEXT_KEY] = open_next
    st.rerun()


def _confirm_delete(db: Database, actor: Actor, campaign: CampaignView, key: str) -> None:
    st.warning(f"Delete the draft '{md(campaign.name)}'? Its settings are lost; this cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", key=f"{key}_delete_yes", type="primary"):
        st.session_state.pop(f"{key}_confirm", None)
        if run_action(delete_campaign, db, actor, campaign.id) is not None:
            _done(f"Draft '{md(campaign.name)}' deleted.")
    if no.button("Keep it", key=f"{key}_delete_no"):
        st.session_state.pop(f"{key}_confirm", None)
        st.rerun()


def show(db: Database, actor: Actor, campaign: CampaignView) -> None:
    """Clone (any status), archive (finished) or restore (archived), delete (draft, asks first)."""
    if not actor.can(Permission.edit_campaigns):
        return
    key = f"cmp{campaign.id}_actions"
    clone, archive, delete = st.columns(3)
    if clone.button("Clone into a new draft", key=f"{key}_clone"):
        copy = run_action(clone_campaign, db, actor, campaign.id)
        if copy is not None:
            _done(f"Campaign '{md(copy.name)}' created as a draft with the same settings.", copy.id)
    if campaign.archived_at is not None:
        if archive.button("Restore from the archive", key=f"{key}_restore"):
            if run_action(restore_campaign, db, actor, campaign.id) is not None:
                _done(f"Campaign '{md(campaign.name)}' restored to the list.", campaign.id)
    elif campaign.status in FINISHED and archive.button("Archive", key=f"{key}_archive"):
        if run_action(archive_campaign, db, actor, campaign.id) is not None:
            _done(f"Campaign '{md(campaign.name)}' archived: it is listed under "
                  "'Show archived campaigns'.")
    if campaign.status == "draft" and delete.button("Delete this draft", key=f"{key}_delete"):
        st.session_state[f"{key}_confirm"] = True
    if st.session_state.get(f"{key}_confirm"):
        _confirm_delete(db, actor, campaign, key)
