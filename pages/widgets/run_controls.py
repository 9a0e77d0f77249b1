"""A campaign's run controls (start, pause, resume, retry failed leads, cancel), for the Campaigns
page's Run tab and the Run monitor: which buttons work is `core.lifecycle.allowed_actions` of the
campaign's status; cancelling and retrying ask first. The caller checks the actor's role."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.campaign_runs import (
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    retry_failed_leads,
    retryable_failed_leads,
    start_campaign,
)
from core.campaigns import CampaignView
from core.db import Database
from core.lifecycle import Action, allowed_actions
from core.permissions import Actor
from core.text import plural, plural_noun
from pages.common import md, run_action

LABELS = {
    Action.start: "Start now",
    Action.pause: "Pause",
    Action.resume: "Resume",
    Action.cancel: "Cancel campaign…",
}
# The button keys' suffixes: `{key}_start`, `{key}_retry`, ...
KEY_SUFFIX = {**{action: action.value for action in LABELS}, Action.retry_failed: "retry"}
BLOCKED_HELP = "Fix the checks marked ❌ first."
RETRY_HELP = ("Put the failed leads back to pending, attempts reset. Skipped leads, sends that may have "
              "gone out and drafts a reviewer rejected stay.")


def _done(key: str, flash_key: str, message: str) -> None:
    st.session_state[flash_key] = message
    st.session_state.pop(f"{key}_confirm", None)
    st.rerun()


def _act(key: str, flash_key: str, message: Callable[[Any], str], action: Callable[..., Any],
         *args: Any) -> None:
    result = run_action(action, *args)
    if result is not None:
        _done(key, flash_key, message(result))


def _ask(key: str, action: Action, campaign: CampaignView) -> None:
    st.session_state[f"{key}_confirm"] = (action.value, campaign.id)


def _confirm_cancel(db: Database, actor: Actor, campaign: CampaignView, key: str, flash_key: str) -> None:
    name = md(campaign.name)
    st.warning(f"Cancel '{name}' for good? Every lead not yet messaged ends cancelled; "
               "this cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, cancel it", key=f"{key}_cancel_confirm", type="primary"):
        _act(key, flash_key, lambda _: f"Cancelled '{name}'.", cancel_campaign, db, actor, campaign.id)
    if no.button("Keep it", key=f"{key}_cancel_keep"):
        st.session_state.pop(f"{key}_confirm", None)
        st.rerun()


def _retried(campaign: CampaignView, retried: int) -> str:
    after = "" if campaign.status == "running" else " The campaign is paused: resume it to send them."
    return f"{plural(retried, 'failed lead')} {plural_noun(retried, 'is', 'are')} pending again.{after}"


def _confirm_retry(db: Database, actor: Actor, campaign: CampaignView, key: str, flash_key: str,
                   failed: int) -> None:
    then = ("they go out as the run goes on" if campaign.status == "running"
            else "they go out once you resume the campaign")
    st.warning(f"Put {plural(failed, 'failed lead')} of '{md(campaign.name)}' back to pending? Each is tried "
               f"again from the step where it failed; {then}.")
    yes, no = st.columns(2)
    if yes.button("Yes, retry them", key=f"{key}_retry_confirm", type="primary"):
        _act(key, flash_key, lambda retried: _retried(campaign, retried), retry_failed_leads, db, actor,
             campaign.id)
    if no.button("Keep them failed", key=f"{key}_retry_keep"):
        st.session_state.pop(f"{key}_confirm", None)
        st.rerun()


def _button(column: DeltaGenerator, key: str, action: Action, *, allowed: bool, blocked: bool,
            failed: int) -> bool:
    if action == Action.retry_failed:
        return column.button(f"Retry failed leads ({failed:,})", key=f"{key}_retry", help=RETRY_HELP,
                             disabled=not allowed or failed == 0, width="stretch")
    held = blocked and action == Action.start
    return column.button(LABELS[action], key=f"{key}_{KEY_SUFFIX[action]}", width="stretch",
                         type="primary" if action in (Action.start, Action.resume) else "secondary",
                         disabled=not allowed or held, help=BLOCKED_HELP if held else None)


def show(key: str, db: Database, actor: Actor, campaign: CampaignView, *, offer: Sequence[Action],
         flash_key: str, keep_place: bool = False, blocked: bool = False) -> None:
    """The buttons of `offer` (start, pause, resume, retry_failed, cancel) in one row.

    `keep_place`: every offered button is drawn, those the status does not allow disabled (the
    monitor's fixed row); otherwise only the allowed ones, left to right. `blocked`: the pre-flight
    failed, so Start is disabled. The outcome goes to `st.session_state[flash_key]`, then a rerun.
    """
    allowed = allowed_actions(campaign.status)
    shown = [action for action in offer if keep_place or action in allowed]
    failed = 0
    if Action.retry_failed in shown:
        failed = run_action(retryable_failed_leads, db, actor, campaign.id) or 0
    name = md(campaign.name)
    clicked = {
        action: _button(column, key, action, allowed=action in allowed, blocked=blocked, failed=failed)
        for column, action in zip(st.columns(max(4, len(shown))), shown, strict=False)
    }
    if clicked.get(Action.start):
        _act(key, flash_key, lambda _: f"Campaign '{name}' started.", start_campaign, db, actor, campaign.id)
    if clicked.get(Action.pause):
        _act(key, flash_key, lambda _: f"Paused '{name}': leads in flight finish, no new lead starts.",
             pause_campaign, db, actor, campaign.id)
    if clicked.get(Action.resume):
        _act(key, flash_key, lambda _: f"Resumed '{name}'.", resume_campaign, db, actor, campaign.id)
    for action in (Action.cancel, Action.retry_failed):
        if clicked.get(action):
            _ask(key, action, campaign)
    waiting = st.session_state.get(f"{key}_confirm")
    if waiting == (Action.cancel.value, campaign.id) and Action.cancel in allowed:
        _confirm_cancel(db, actor, campaign, key, flash_key)
    elif waiting == (Action.retry_failed.value, campaign.id) and Action.retry_failed in allowed:
        _confirm_retry(db, actor, campaign, key, flash_key, failed)
