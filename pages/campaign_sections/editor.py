"""Campaigns page, the editor: every field of a campaign, locked (with the reason) as its status requires.

Widget values start from the saved campaign; Save sends only what the user changed, so the status
rules of core judge exactly that change (a campaign started meanwhile refuses a new prompt).
"""

from __future__ import annotations

from datetime import time
from typing import Any

import streamlit as st

from core.campaign_editor import (
    editable_fields,
    lock_reason,
    model_choices,
    save_campaign,
)
from core.campaign_prompts import DEFAULT_PROMPTS
from core.campaign_shape import BUDGET_CAP_USD, MAX_SMS_SEGMENTS, SENDS_PER_MINUTE, TEMPERATURE, CampaignView
from core.compliance.send_window import window_from_settings
from core.config import Settings
from core.db import Database
from core.inbound.policy import CHOOSABLE_STOP_CLASSES, DEFAULT_STOP_CLASSES
from core.merge_fields import HELP as MERGE_FIELDS_HELP
from core.money import MONEY_FIELD_FORMAT, microusd_to_usd, usd_to_microusd
from core.permissions import Actor, Permission
from pages.campaign_sections import audience, steps
from pages.campaign_sections.listing import FLASH_KEY, OPEN_NEXT_KEY
from pages.common import md, run_action
from pages.inbox_sections.filters import class_label

CHANNELS = {"sms": "SMS", "email": "Email"}
WINDOW_FIELDS = ("window_override", "window_start", "window_end", "window_weekdays")


def _initial(campaign: CampaignView | None, settings: Settings) -> dict[str, Any]:
    """The widget values of a saved campaign, or of a new one."""
    window = (campaign.send_window if campaign else None) or {}
    return {
        "name": campaign.name if campaign else "",
        "description": (campaign.description or "") if campaign else "",
        "channel": campaign.channel if campaign else "sms",
        "system_prompt": campaign.system_prompt if campaign else DEFAULT_PROMPTS["sms"],
        "model": campaign.model if campaign else settings.default_model,
        "temperature": float(campaign.temperature) if campaign else TEMPERATURE.default,
        "window_override": bool(window),
        "window_start": time.fromisoformat(window.get("start") or "08:00"),
        "window_end": time.fromisoformat(window.get("end") or "21:00"),
        "window_weekdays": bool(window.get("weekdays_only", False)),
        "sends_per_minute": campaign.sends_per_minute if campaign else None,
        "budget_usd": microusd_to_usd(campaign.budget_cap_microusd if campaign else None),
        "approval_required": campaign.approval_required if campaign else False,
        "research_web": campaign.research_web if campaign else False,
        "max_sms_segments": campaign.max_sms_segments if campaign else MAX_SMS_SEGMENTS.default,
        "reply_stop_classes": list(campaign.reply_stop_classes if campaign else DEFAULT_STOP_CLASSES),
    }


def forget(prefix: str) -> None:
    """Drop the editor's widget state, so the next run starts again from the saved campaign."""
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]


def _send_window(key: str, disabled: bool) -> dict[str, Any] | None:
    override = st.checkbox("Override the tenant's send window (recipient's local time)",
                           key=f"{key}window_override", disabled=disabled)
    if not override:
        return None
    start, end, weekdays = st.columns(3)
    opens = start.time_input("Sends from", key=f"{key}window_start", disabled=disabled)
    closes = end.time_input("Sends until", key=f"{key}window_end", disabled=disabled)
    weekdays_only = weekdays.checkbox("Weekdays only", key=f"{key}window_weekdays", disabled=disabled)
    window = {"start": f"{opens:%H:%M}", "end": f"{closes:%H:%M}", "weekdays_only": weekdays_only}
    # An end before the start is the next morning: the window spans midnight.
    described = window_from_settings(None, None, None, window).describe()
    st.caption(f"Messages go out {described}, in each recipient's local time.")
    return window


def show(db: Database, actor: Actor, settings: Settings, campaign: CampaignView | None) -> None:
    key = f"cmp{campaign.id if campaign else 'new'}_"
    status = campaign.status if campaign else "draft"
    may_edit = actor.can(Permission.edit_campaigns)
    editable = editable_fields(status) if may_edit else frozenset()
    if not may_edit:
        st.caption("Your role can read campaigns but not change them.")
    elif reason := lock_reason(status):
        st.caption(f":lock: {reason}")
    initial = _initial(campaign, settings)
    for name, value in initial.items():
        st.session_state.setdefault(f"{key}{name}", value)

    def locked(field: str) -> bool:
        return field not in editable

    values: dict[str, Any] = {}
    values["name"] = st.text_input("Name", key=f"{key}name", disabled=locked("name"))
    values["description"] = st.text_area("Description", key=f"{key}description", height=68,
                                         disabled=locked("description")) or None
    channel = st.radio("Channel", list(CHANNELS), format_func=CHANNELS.__getitem__, horizontal=True,
                       key=f"{key}channel", disabled=locked("channel"))
    values["channel"] = channel
    # A prompt left at another channel's default follows the channel.
    if st.session_state[f"{key}system_prompt"] in DEFAULT_PROMPTS.values():
        st.session_state[f"{key}system_prompt"] = DEFAULT_PROMPTS[channel]
    values["system_prompt"] = st.text_area("System prompt", key=f"{key}system_prompt", height=150,
                                           disabled=locked("system_prompt"), help=MERGE_FIELDS_HELP)
    st.caption(MERGE_FIELDS_HELP + " They work in the variants' and follow-ups' prompts too.")
    values["variants"] = steps.show_variants(f"{key}variant", campaign.variants if campaign else (),
                                             disabled=locked("variants"))
    model_column, temperature_column = st.columns(2)
    models = model_choices(settings, campaign.model if campaign else None)
    values["model"] = model_column.selectbox("Model", models, key=f"{key}model",
                                             disabled=locked("model"))
    values["temperature"] = temperature_column.slider(
        "Temperature", **TEMPERATURE.widget(), key=f"{key}temperature", disabled=locked("temperature"))
    st.subheader("Audience")
    values["audience"] = audience.show(actor, f"{key}audience", channel,
                                       campaign.audience if campaign else {},
                                       disabled=locked("audience"))
    st.subheader("Steps")
    values["steps"] = steps.show_steps(f"{key}step", campaign.steps if campaign else (),
                                       disabled=locked("steps"))
    st.subheader("Pace, budget and checks")
    values["send_window"] = _send_window(key, locked("send_window"))
    if campaign is not None and all(st.session_state[f"{key}{name}"] == initial[name]
                                    for name in WINDOW_FIELDS):
        # Untouched: keep the saved override as it is, even one that sets only some keys.
        values["send_window"] = campaign.send_window
    rate, budget, segments = st.columns(3)
    # An empty field is no limit (no cap): 0 would mean nothing may be sent (spent).
    per_minute = rate.number_input("Sends per minute", **SENDS_PER_MINUTE.widget(), placeholder="no limit",
                                   key=f"{key}sends_per_minute", disabled=locked("sends_per_minute"))
    values["sends_per_minute"] = None if per_minute is None else int(per_minute)
    dollars = budget.number_input("Budget cap (US$)", **BUDGET_CAP_USD.widget(), format=MONEY_FIELD_FORMAT,
                                  placeholder="no cap", key=f"{key}budget_usd",
                                  disabled=locked("budget_cap_microusd"))
    values["budget_cap_microusd"] = usd_to_microusd(dollars)
    if channel == "sms":
        values["max_sms_segments"] = int(segments.number_input(
            "Most SMS segments per message", **MAX_SMS_SEGMENTS.widget(),
            key=f"{key}max_sms_segments", disabled=locked("max_sms_segments")))
    values["approval_required"] = st.checkbox("Drafts need approval before sending",
                                              key=f"{key}approval_required",
                                              disabled=locked("approval_required"))
    values["research_web"] = st.checkbox("Research each lead on the web",
                                         key=f"{key}research_web", disabled=locked("research_web"))
    stop_on = st.multiselect("Replies that stop this campaign's sequence", CHOOSABLE_STOP_CLASSES,
                             key=f"{key}reply_stop_classes", format_func=class_label,
                             disabled=locked("reply_stop_classes"),
                             help="An opt-out always stops every sequence. An absence notice not chosen "
                             "here postpones the next step past the return date instead.")
    values["reply_stop_classes"] = tuple(c for c in CHOOSABLE_STOP_CLASSES if c in stop_on)
    if not editable:
        return
    if st.button("Create campaign" if campaign is None else "Save changes", type="primary",
                 key=f"{key}save"):
        _save(db, actor, campaign, key, values)


def _save(db: Database, actor: Actor, campaign: CampaignView | None, key: str,
          values: dict[str, Any]) -> None:
    saved = run_action(save_campaign, db, actor, campaign.id if campaign else None, values)
    if saved is None:
        return
    forget(key)
    st.session_state[FLASH_KEY] = (f"Campaign '{md(saved.name)}' created as a draft." if campaign is None
                                   else f"Campaign '{md(saved.name)}' saved.")
    st.session_state[OPEN_NEXT_KEY] = saved.id
    st.rerun()
