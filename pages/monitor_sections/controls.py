"""Run controls: why the run is paused, then pause, resume, retry failed leads and cancel (the last two
with a confirmation) for roles that may run campaigns."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.campaign_runs import (
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    retry_failed_leads,
    retryable_failed_leads,
)
from core.campaigns import CampaignView
from core.db import Database
from core.lifecycle import RETRYABLE_CAMPAIGN_STATUSES
from core.permissions import Actor, Permission
from core.text import plural, plural_noun
from pages.common import md, run_action

CONFIRM_KEY = "monitor_confirm_cancel"
RETRY_CONFIRM_KEY = "monitor_confirm_retry"
FLASH_KEY = "monitor_flash"
def _done(message: str) -> None:
    st.session_state[FLASH_KEY] = message
    st.session_state.pop(CONFIRM_KEY, None)
    st.session_state.pop(RETRY_CONFIRM_KEY, None)
    st.rerun()


def _paused_reason(campaign: CampaignView) -> None:
    """Why the run stopped (a refused key, an empty account, failures in a row, the budget cap)."""
    if campaign.status == "paused" and campaign.status_reason:
        st.warning(f"Paused: {md(campaign.status_reason)}", icon="⏸️")


def _retry(db: Database, actor: Actor, campaign: CampaignView, column: DeltaGenerator,
           failed: int) -> None:
    retryable = campaign.status in RETRYABLE_CAMPAIGN_STATUSES and failed > 0
    if column.button(f"Retry failed leads ({failed:,})", key="monitor_retry",
                     disabled=not retryable, width="stretch",
                     help="Put the failed leads back to pending, attempts reset. Skipped leads, "
                          "sends that may have gone out and drafts a reviewer rejected stay."):
        st.session_state[RETRY_CONFIRM_KEY] = campaign.id
        st.session_state.pop(CONFIRM_KEY, None)
    if st.session_state.get(RETRY_CONFIRM_KEY) != campaign.id:
        return
    then = ("they go out as the run goes on" if campaign.status == "running"
            else "they go out once you resume the campaign")
    st.warning(f"Put {plural(failed, 'failed lead')} of '{md(campaign.name)}' back to pending? Each is tried "
               f"again from the step where it failed; {then}.")
    yes, no = st.columns(2)
    if yes.button("Yes, retry them", key="monitor_retry_confirm", type="primary"):
        retried = run_action(retry_failed_leads, db, actor, campaign.id)
        if retried is not None:
            after = ("" if campaign.status == "running"
                     else " The campaign is paused: resume it to send them.")
            pending = plural_noun(retried, "is", "are")
            _done(f"{plural(retried, 'failed lead')} {pending} pending again.{after}")
    if no.button("Keep them failed", key="monitor_retry_keep"):
        st.session_state.pop(RETRY_CONFIRM_KEY, None)
        st.rerun()


def show(db: Database, actor: Actor, campaign: CampaignView) -> None:
    _paused_reason(campaign)
    if not actor.can(Permission.run_campaigns):
        st.caption("Your role watches runs; a manager, admin or the owner can pause or cancel them.")
        return
    status = campaign.status
    failed = run_action(retryable_failed_leads, db, actor, campaign.id) or 0
    pause_column, resume_column, retry_column, cancel_column = st.columns(4)
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
        st.session_state.pop(RETRY_CONFIRM_KEY, None)
    _retry(db, actor, campaign, retry_column, failed)
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
