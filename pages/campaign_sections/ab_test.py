"""Campaigns page, the A/B test: each variant's reply rate, whether the difference counts, keep the winner."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.ab_test import ab_result, keep_winner
from core.campaigns import CampaignView
from core.db import Database
from core.permissions import Actor, Permission
from core.text import plural
from pages.campaign_sections.listing import FLASH_KEY
from pages.common import md, run_action


def show(db: Database, actor: Actor, campaign: CampaignView) -> None:
    key = f"cmp{campaign.id}_ab"
    result = run_action(ab_result, db, actor, campaign.id)
    if result is None:
        return
    st.container(key=f"{key}_table").dataframe(
        pd.DataFrame([{"variant": v.name, "leads": v.enrolled, "first message sent": v.sent,
                       "replied": v.replied, "reply rate": v.reply_rate} for v in result.variants]),
        hide_index=True,
        column_config={"reply rate": st.column_config.NumberColumn("reply rate", format="percent")},
    )
    (st.success if result.significant else st.info)(md(result.verdict))
    if result.kept:
        st.caption(f"Variant {md(result.kept)} was kept: every lead not yet drafted goes to it.")
        return
    if not actor.can(Permission.run_campaigns) or len(result.variants) < 2:
        return
    labels = {v.name: f"Variant {v.name}" for v in result.variants}
    names = list(labels)
    default = names.index(result.leader) if result.leader in names else 0
    pick, act = st.columns([1, 2], vertical_alignment="bottom")
    winner: str = pick.selectbox("Variant to keep", names, index=default, key=f"{key}_winner",
                                 format_func=labels.__getitem__)
    if not result.significant:
        act.caption("The difference is not significant yet: keeping a variant now may keep the weaker one.")
    if act.button(f"Keep variant {md(winner)} for the leads not yet drafted", key=f"{key}_keep"):
        moved = run_action(keep_winner, db, actor, campaign.id, winner)
        if moved is not None:
            st.session_state[FLASH_KEY] = (f"Variant {md(winner)} kept: {plural(moved, 'lead')} moved to it; "
                                           "new leads get it too.")
            st.rerun()
