"""A campaign picker that owns its session-state key; the Review queue reuses it with "All"."""

from __future__ import annotations

import streamlit as st

from core.campaigns import CampaignView

ALL_CAMPAIGNS = 0


def show(key: str, campaigns: list[CampaignView], *, allow_all: bool = False) -> int:
    """The picked campaign's id (ALL_CAMPAIGNS for "All campaigns" when `allow_all`)."""
    # Labels from a dict, not a lambda: widget settings must pickle (serializable session state).
    labels = {c.id: f"{c.name} · {c.status} (#{c.id})" for c in campaigns}
    options = [c.id for c in campaigns]
    if allow_all:
        labels[ALL_CAMPAIGNS] = "All campaigns"
        options.insert(0, ALL_CAMPAIGNS)
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    return int(st.selectbox("Campaign", options, key=key, format_func=labels.__getitem__))
