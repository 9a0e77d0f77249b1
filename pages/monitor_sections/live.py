"""The live figures of one run, refreshed by `st.fragment(run_every=...)` while the run is live."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from core import monitor
from core.campaign_progress import SENDS_SERIES_MINUTES, CampaignProgress, campaign_progress
from core.db import Database
from core.models import EnrolmentStatus
from core.money import format_usd
from core.permissions import Actor
from core.status_words import lead_status_word, message_status_word
from core.text import plural, plural_noun
from core.workers import list_workers
from pages.common import user_errors
from pages.widgets import run_progress

REFRESH_SECONDS = 2.0
EVENTS_SHOWN = 30


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = round(seconds / 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _spend(progress: CampaignProgress) -> None:
    cap = progress.budget_cap_microusd
    label = format_usd(progress.spent_microusd)
    st.metric("Spend", label, help=f"Budget cap: {format_usd(cap)}" if cap else "No budget cap.")
    if cap:
        share = progress.spent_microusd / cap
        st.progress(min(1.0, share), text=f"{share:.0%} of the {format_usd(cap)} cap")


def _figures(db: Database, actor: Actor, campaign_id: int, was_live: bool) -> None:
    # Every figure comes from a service: one that refuses (the campaign was deleted meanwhile, the
    # role changed) ends the figures with its message, not a traceback in the fragment.
    with user_errors():
        _draw_figures(db, actor, campaign_id, was_live)


def _draw_figures(db: Database, actor: Actor, campaign_id: int, was_live: bool) -> None:
    progress = campaign_progress(db, actor, campaign_id)
    if monitor.is_live(progress.status) != was_live:
        st.rerun()  # the run started or ended: the whole page redraws (and refreshes or stops)
    # Why a paused run stopped is the controls' banner above (as text: it may quote a provider).
    run_progress.show(progress)
    workers = list_workers(db, actor)
    flight_column, minute_column, five_column, eta_column, workers_column, spend_column = st.columns(6)
    flight_column.metric("In flight", f"{progress.in_flight:,}")
    minute_column.metric("Sent in the last minute", f"{progress.sent_last_minute:,}",
                         chart_data=progress.sends_per_minute, chart_type="bar",
                         help=f"The bars: messages sent in each of the last {SENDS_SERIES_MINUTES} minutes.")
    five_column.metric("Sent in the last 5 minutes", f"{progress.sent_last_5_minutes:,}")
    eta_column.metric("ETA", format_eta(progress.eta_seconds),
                      help="While the campaign runs: the leads due now at the pace of the last five "
                           "minutes. A paused campaign has none.")
    workers_column.metric("Workers alive", sum(w.alive for w in workers),
                          help=f"{plural(len(workers), 'runner')} {plural_noun(len(workers), 'has', 'have')} "
                               "reported a heartbeat.")
    with spend_column:
        _spend(progress)

    leads_column, messages_column = st.columns(2)
    leads_column.markdown("**Leads by status**")
    leads_column.container(key="monitor_leads_by_status").dataframe(
        [{"status": lead_status_word(s.value), "leads": progress.leads_by_status.get(s.value, 0)}
         for s in EnrolmentStatus if progress.leads_by_status.get(s.value)],
        hide_index=True, width="stretch")
    messages_column.markdown("**Messages by status**")
    if progress.messages_by_status:
        messages_column.container(key="monitor_messages_by_status").dataframe(
            [{"status": message_status_word(s), "messages": n}
             for s, n in sorted(progress.messages_by_status.items())],
            hide_index=True, width="stretch")
    else:
        messages_column.caption("No message sent yet.")

    st.markdown("**Errors by reason**")
    errors = monitor.errors_by_reason(db, actor, campaign_id)
    if errors:
        st.container(key="monitor_errors").dataframe(
            [{"leads": e.leads, "status": lead_status_word(e.status), "reason": e.reason
              + (f" (and {e.wordings - 1} more like it, differing in numbers)" if e.wordings > 1 else "")}
             for e in errors],
            hide_index=True, width="stretch")
    else:
        st.caption("No failed leads.")
    if waits := monitor.waits_by_reason(db, actor, campaign_id):
        st.markdown("**Why leads wait**")
        more = " (and {} more like it, differing only in numbers such as the due time)"
        st.container(key="monitor_waits").dataframe(
            [{"leads": w.leads, "reason": w.reason + (more.format(w.wordings - 1) if w.wordings > 1 else "")}
             for w in waits],
            hide_index=True, width="stretch")
    st.markdown("**Recent events**")
    events = monitor.recent_events(db, actor, campaign_id, limit=EVENTS_SHOWN)
    if events:
        st.container(key="monitor_events").dataframe(
            [{"when": e.created_at.strftime("%H:%M:%S"), "lead #": e.campaign_lead_id,
              "lead": e.lead_name, "node": e.node, "level": e.level, "message": e.message}
             for e in events],
            hide_index=True, width="stretch", height=300)
    else:
        st.caption("No events yet.")
    st.caption(f"Updated {datetime.now(UTC).strftime('%H:%M:%S')} UTC"
               + (f", every {REFRESH_SECONDS:g} s while the run is live." if was_live else "."))


def show(db: Database, actor: Actor, campaign_id: int, live: bool) -> None:
    """The figures; refreshed every REFRESH_SECONDS only while `live`, so a finished run costs nothing."""
    st.fragment(_figures, run_every=REFRESH_SECONDS if live else None)(db, actor, campaign_id, live)
