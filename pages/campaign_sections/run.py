"""Campaigns page, running: progress, the cost estimate, and start, schedule, pause, resume, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st

from core import campaign_runs
from core.campaign_progress import CampaignProgress
from core.campaigns import CampaignView
from core.db import Database
from core.lifecycle import Action, allowed_actions
from core.money import format_usd
from core.permissions import Actor, Permission
from core.pipeline.estimate import CostEstimate, describe_cost, estimate_campaign_cost
from core.preflight import Preflight, preflight
from core.status_words import campaign_status_word
from core.tenants import from_local_time, in_zone, local_time_in, tenant_clock
from core.text import plural, sentence
from pages.campaign_sections.editor import FLASH_KEY
from pages.common import get_db, get_settings, md, run_action
from pages.widgets import run_controls, run_progress


def _progress(progress: CampaignProgress) -> None:
    run_progress.show(progress)
    enrolled, sent, spent, budget = st.columns(4)
    enrolled.metric("Enrolled", f"{progress.enrolled:,}")
    sent.metric("Messages sent", f"{progress.messages_by_status.get('sent', 0):,}")
    spent.metric("Spent", format_usd(progress.spent_microusd))
    budget.metric("Budget cap", format_usd(progress.budget_cap_microusd)
                  if progress.budget_cap_microusd is not None else "no cap")
    if progress.status_reason and progress.status in ("paused", "cancelled"):
        st.caption(f"{campaign_status_word(progress.status).capitalize()}: {md(progress.status_reason)}")
    cap = progress.budget_cap_microusd
    if progress.status == "paused" and cap is not None and progress.spent_microusd >= cap:
        st.warning(f"The budget cap is spent ({format_usd(progress.spent_microusd)} of "
                   f"{format_usd(cap)}): raise the cap on the Editor tab, then resume.")


ESTIMATE_CACHE_SECONDS = 15


@st.cache_data(ttl=ESTIMATE_CACHE_SECONDS, show_spinner=False)
def load_estimate(campaign: CampaignView, _actor: Actor) -> CostEstimate:
    """Keyed by the campaign as saved: the tabs' reruns (every edit, every preview) do not price
    the audience again; leads imported meanwhile and tenant prices count within the TTL."""
    return estimate_campaign_cost(get_db(), get_settings(), _actor, campaign.id)


def _estimate(estimate: CostEstimate) -> None:
    st.markdown("**Cost estimate for the whole audience**")
    leads, per_lead, total, worst = st.columns(4)
    leads.metric("Leads", f"{estimate.leads:,}")
    per_lead.metric("Per lead", format_usd(estimate.cost_per_lead_microusd),
                    help=f"{plural(estimate.steps, 'step')}, "
                         f"{plural(estimate.calls_per_lead, 'model call')} on {estimate.model}")
    total.metric("Expected", format_usd(estimate.total_microusd))
    worst.metric("At most", format_usd(estimate.max_total_microusd),
                 help="If the guard has every draft written again once.")
    if estimate.margin:
        st.caption(f"An estimate: {describe_cost(estimate)} (95% confidence).")


CHECK_ICONS = {"passed": "✅", "warning": "⚠️", "failed": "❌"}


def _preflight(db: Database, actor: Actor, campaign: CampaignView) -> Preflight | None:
    """The checklist before a start: each check passed or failed in words, with what to do."""
    estimate = run_action(load_estimate, campaign, actor)
    if estimate is None:
        return None
    _estimate(estimate)
    checks = run_action(preflight, db, actor, campaign.id, estimate=estimate)
    if checks is None:
        return None
    st.markdown("**Before it starts**")
    for check in checks.checks:
        state = "passed" if check.passed else "failed" if check.blocking else "warning"
        # The words quote settings (a sender address): shown escaped.
        st.markdown(f"{CHECK_ICONS[state]} **{check.label}**: {md(sentence(check.words))}")
    if not checks.ready:
        st.warning("Fix what is marked ❌ above before starting: as it stands the campaign cannot send.")
    return checks


def _act(label: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    if run_action(action, *args, **kwargs) is not None:
        st.session_state[FLASH_KEY] = label
        st.rerun()


def _schedule(db: Database, actor: Actor, campaign: CampaignView, key: str, zone: str, blocked: bool) -> None:
    # Entered and shown on the tenant's own clock (Admin settings), stored as an instant.
    soon = local_time_in(campaign.scheduled_at or datetime.now(UTC) + timedelta(hours=1), zone)
    day, clock, go = st.columns([2, 2, 1])
    start_day = day.date_input(f"Start on ({zone})", value=soon.date(), key=f"{key}_day")
    start_time = clock.time_input(f"at ({zone})", value=soon.time().replace(second=0, microsecond=0),
                                  key=f"{key}_time")
    if go.button("Schedule", key=f"{key}_schedule", disabled=blocked):
        start_at = from_local_time(start_day, start_time, zone)
        _act(f"Campaign '{md(campaign.name)}' scheduled for {in_zone(start_at, zone)}.",
             campaign_runs.schedule_campaign, db, actor, campaign.id, start_at)


def _controls(db: Database, actor: Actor, campaign: CampaignView, checks: Preflight | None,
              zone: str) -> None:
    key = f"cmp{campaign.id}_run"
    blocked = checks is not None and not checks.ready
    run_controls.show(key, db, actor, campaign, flash_key=FLASH_KEY, blocked=blocked,
                      offer=(Action.start, Action.pause, Action.resume, Action.cancel))
    if Action.schedule in allowed_actions(campaign.status):
        _schedule(db, actor, campaign, key, zone, blocked)


def show(db: Database, actor: Actor, campaign: CampaignView, progress: CampaignProgress | None) -> None:
    """`progress`: the page's one read of the run's figures (None for a draft)."""
    if progress is not None:
        _progress(progress)
    elif campaign.status_reason:  # a draft the runner held back at its scheduled time
        st.warning(f"{md(sentence(campaign.status_reason))} Fix what is marked ❌ below, then start "
                   "or schedule it again.", icon="⏸️")
    checks = _preflight(db, actor, campaign) if Action.start in allowed_actions(campaign.status) else None
    zone = tenant_clock(db, actor)
    if campaign.scheduled_at is not None:
        st.caption(f"Starts at {in_zone(campaign.scheduled_at, zone)}.")
    if actor.can(Permission.run_campaigns):
        _controls(db, actor, campaign, checks, zone)
    else:
        st.caption("Your role cannot start, pause or cancel campaigns.")
