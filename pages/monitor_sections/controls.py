"""Run controls: why the run is paused, then pause, resume, retry failed leads and cancel (the last two
with a confirmation) for roles that may run campaigns."""

from __future__ import annotations

import streamlit as st

from core.campaigns import CampaignView
from core.db import Database
from core.lifecycle import Action
from core.permissions import Actor, Permission
from pages.common import md
from pages.widgets import run_controls

FLASH_KEY = "monitor_flash"
OFFER = (Action.pause, Action.resume, Action.retry_failed, Action.cancel)


def _paused_reason(campaign: CampaignView) -> None:
    """Why the run stopped (a refused key, an empty account, failures in a row, the budget cap)."""
    if campaign.status == "paused" and campaign.status_reason:
        st.warning(f"Paused: {md(campaign.status_reason)}", icon="⏸️")


def show(db: Database, actor: Actor, campaign: CampaignView) -> None:
    _paused_reason(campaign)
    if not actor.can(Permission.run_campaigns):
        st.caption("Your role watches runs; a manager, admin or the owner can pause or cancel them.")
        return
    # Every button keeps its place; those the status does not allow are disabled.
    run_controls.show("monitor", db, actor, campaign, offer=OFFER, flash_key=FLASH_KEY, keep_place=True)
