"""What a role sees at the URL of a page it may not open, instead of "Page not found"."""

from __future__ import annotations

import streamlit as st

from core.permissions import Actor
from pages.registry import REFUSED_ICON, PageSpec, refusal


def show(spec: PageSpec, actor: Actor, home: PageSpec) -> None:
    """The refusal, who may open the page, and the way back to a page the role may open."""
    st.warning(refusal(spec, actor.role), icon=REFUSED_ICON)
    st.page_link(home.script, label=f"Go to {home.title}", icon=home.icon)
