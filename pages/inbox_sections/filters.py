"""The Inbox's filters: class, campaign, handled or not; owns its keys."""

from __future__ import annotations

import streamlit as st

from core.campaign_shape import CampaignView
from core.inbound.classify import ReplyClass
from core.inbound.inbox import InboxFilter
from pages.monitor_sections import picker

ALL_CLASSES = "All classes"
HANDLED = {"Waiting for a person": False, "Handled": True, "All": None}


def class_label(value: str | None) -> str:
    """ "not_now" -> "Not now"; None (the agent has not read it yet) -> "Not read yet"."""
    return "Not read yet" if value is None else value.replace("_", " ").capitalize()


def _class_option(value: str) -> str:
    return value if value == ALL_CLASSES else class_label(value)


def show(campaigns: list[CampaignView]) -> InboxFilter:
    """The filter the user chose; every control keeps its value across reruns."""
    class_column, campaign_column, handled_column = st.columns([2, 3, 2])
    kind = class_column.selectbox("Class", [ALL_CLASSES, *(c.value for c in ReplyClass)], key="inbox_class",
                                  format_func=_class_option)
    with campaign_column:
        picked = picker.show("inbox_campaign", campaigns, allow_all=True)
    handled = handled_column.selectbox("Handled", list(HANDLED), key="inbox_handled")
    return InboxFilter(
        classification=None if kind == ALL_CLASSES else kind,
        campaign_id=None if picked == picker.ALL_CAMPAIGNS else picked,
        handled=HANDLED[handled],
    )
