"""Run controls: pause, resume and cancel (with a confirmation) for roles that may run campaigns."""

from __future__ import annotations

import streamlit as st

from core.campaigns import CampaignView, cancel_campaign, pause_campaign, resume_campaign
from core.db import Database
from core.permissions import Actor, Permission
from pages.common import md, run_action

CONFIRM_KEY = "monitor_confirm_cancel"
FLASH_KEY = "monitor_flash"


def _done(message: str) -> None:
    st.session_state[FLASH_KEY] = message
    st.session_state.pop(CONFIRM_KEY, None)
    st.rerun()


def show(db: Database, actor: Actor, campaign: CampaignView) -> None:
    if not actor.can(Permission.run_campaigns):
        st.caption("Your role watches runs; a manager, admin or the owner can pause or cancel them.")
        return
    status = campaign.status
    pause_column, resume_column, cancel_column = st.columns(3)
    if pause_column.button("Pause", key="monitor_pause", disabled=status != "running",
                           width="stretch"):
        if run_action(pause_campaign, db, actor, campaign.id) is not None:
            _done(f"Paused '{md(campaign.name)}': leads in flight finish, no new lead starts.")
    if resume_column.button("Resume", key="monitor_resume", disabled=status != "paused",
                            width="stretch"):
        if run_action(resume_campaign, db, actor, campaign.id) is not None:
            _done(f"Resumed '{md(campaign.name)}'.")
    cancellable = status in ("draft", "scheduled", "running", "paused")
    if cancel_column.button("Cancel campaign…", key="monitor_cancel", disabled=not cancellable,
                            width="stretch"):
        st.session_state[CONFIRM_KEY] = campaign.id
    if st.session_state.get(CONFIRM_KEY) == campaign.id:
        st.warning(f"Cancel '{md(campaign.name)}' for good? Every lead not yet messaged ends cancelled; "
                   "this cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Yes, cancel it", key="monitor_cancel_confirm", type="primary"):
            if run_action(cancel_campaign, db, actor, campaign.id) is not None:
                _done(f"Cancelled '{md(campaign.name)}'.")
        if no.button("Keep it", key="monitor_cancel_keep"):
            st.session_state.pop(CONFIRM_KEY, None)
            st.rerun()
