"""The review queue's filters and order: campaign, check result, variant, sort; owns its keys."""

from __future__ import annotations

import streamlit as st

from core.campaigns import CampaignView
from core.db import Database
from core.permissions import Actor
from core.pipeline.review import GuardFilter, ReviewFilter, ReviewSort, review_variants
from pages.common import run_action
from pages.monitor_sections import picker

ALL_VARIANTS = "All variants"


def _variant_label(variant: str) -> str:
    return variant if variant == ALL_VARIANTS else f"Variant {variant}"


def show(db: Database, actor: Actor, campaigns: list[CampaignView]) -> ReviewFilter:
    """The filter the reviewer chose; every control keeps its value across reruns."""
    campaign_column, guard_column, variant_column, sort_column = st.columns([3, 2, 2, 2])
    with campaign_column:
        picked = picker.show("review_campaign", campaigns, allow_all=True)
    campaign_id = None if picked == picker.ALL_CAMPAIGNS else picked
    guard = guard_column.selectbox("Checks", [g.value for g in GuardFilter], key="review_guard")
    variants = run_action(review_variants, db, actor, campaign_id=campaign_id) or []
    variant = variant_column.selectbox("Variant", [ALL_VARIANTS, *variants], key="review_variant",
                                       format_func=_variant_label)
    sort = sort_column.selectbox("Order", [s.value for s in ReviewSort], key="review_sort")
    return ReviewFilter(
        campaign_id=campaign_id,
        guard=GuardFilter(guard),
        variant=None if variant in (None, ALL_VARIANTS) else variant,
        sort=ReviewSort(sort),
    )
