"""Run monitor: one campaign's run, live while it runs, its errors, one lead's trace, and the controls."""

from __future__ import annotations

import streamlit as st

from core import monitor
from core.campaigns import list_campaigns
from core.permissions import Permission
from pages.common import get_db, require_page, run_action
from pages.monitor_sections import controls, lead, live, picker

actor = require_page(Permission.view_monitor)
db = get_db()
st.title("Run monitor")
flash = st.session_state.pop(controls.FLASH_KEY, None)
if flash:
    st.success(flash)

campaigns = run_action(list_campaigns, db, actor) or []
if not campaigns:
    st.info("No campaigns yet: a manager writes one on the Campaigns page, and its run shows here.")
    st.stop()
campaign_id = picker.show("monitor_campaign", campaigns,
                          default=run_action(monitor.campaign_to_watch, db, actor))
campaign = next(c for c in campaigns if c.id == campaign_id)
controls.show(db, actor, campaign)
live.show(db, actor, campaign_id, monitor.is_live(campaign.status))
lead.show(db, actor, campaign_id)
