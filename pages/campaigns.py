"""Campaigns: the list with progress and spend, the editor, the preview of a draft, and the run controls."""

from __future__ import annotations

import streamlit as st

from core.campaign_progress import campaign_progress
from core.campaigns import get_campaign
from core.permissions import Permission
from core.status_words import campaign_status_word
from pages.campaign_sections import ab_test, actions, editor, listing, preview, run
from pages.common import get_db, get_settings, md, require_page, run_action

actor = require_page(Permission.view_campaigns)
db = get_db()
st.title("Campaigns")
if flash := st.session_state.pop(listing.FLASH_KEY, None):
    st.success(flash)

picked = listing.show(db, actor)
if picked is None:
    st.stop()
campaign = None if picked == listing.NEW else run_action(get_campaign, db, actor, picked)
if picked != listing.NEW and campaign is None:
    st.stop()

if campaign is None:
    st.header("New campaign")
    editor.show(db, actor, get_settings(), None)
    st.stop()

# One read of the run's figures for the header and the Run tab, so they cannot disagree.
progress = None if campaign.status == "draft" else run_action(campaign_progress, db, actor, campaign.id)
status_text = progress.status_text if progress else campaign_status_word(campaign.status)
st.header(f"{md(campaign.name)} · {status_text}" + (" · archived" if campaign.archived_at else ""))
actions.show(db, actor, campaign)
has_ab_test = len(campaign.variants) > 1
tabs = (["Run", "Editor"] + (["A/B test"] if has_ab_test else [])
        + (["Preview"] if actor.can(Permission.edit_campaigns) else []))
# A key keeps the open tab across the reruns its buttons cause.
run_tab, editor_tab, *more_tabs = st.tabs(tabs, key="campaigns_tabs")
with run_tab:
    run.show(db, actor, campaign, progress)
with editor_tab:
    editor.show(db, actor, get_settings(), campaign)
if has_ab_test:
    with more_tabs.pop(0):
        ab_test.show(db, actor, campaign)
for tab in more_tabs:
    with tab:
        preview.show(db, actor, campaign)
