"""Drill-down into one lead: its node-by-node log, trace id, draft, sent message and cost."""

from __future__ import annotations

import streamlit as st

from core import monitor
from core.db import Database
from core.money import format_usd
from core.permissions import Actor
from core.status_words import lead_status_word, message_status_word, step_name
from pages.common import md, user_errors

NONE = 0


def pick(key: str, db: Database, actor: Actor, campaign_id: int) -> int | None:
    """The enrolment to drill into: typed by id, or picked from the recently worked leads."""
    recent = monitor.recent_enrolments(db, actor, campaign_id)
    labels = {NONE: "Pick a recent lead"} | {
        r.campaign_lead_id: f"#{r.campaign_lead_id} {r.lead_name} · {lead_status_word(r.status)}"
        for r in recent}
    if st.session_state.get(f"{key}_recent") not in labels:
        st.session_state.pop(f"{key}_recent", None)  # another campaign was picked
    list_column, id_column = st.columns([3, 1])
    picked = list_column.selectbox("Recent leads", list(labels), key=f"{key}_recent",
                                   format_func=labels.__getitem__)
    typed = id_column.number_input("…or lead # (enrolment id)", min_value=0, step=1, value=0,
                                   key=f"{key}_id")
    chosen = int(typed) or int(picked)
    return chosen or None


def show(db: Database, actor: Actor, campaign_id: int) -> None:
    st.subheader("One lead")
    with user_errors():  # an unknown lead # or a refused read is a message, not a traceback
        _show_lead(db, actor, campaign_id)


def _show_lead(db: Database, actor: Actor, campaign_id: int) -> None:
    campaign_lead_id = pick("monitor_lead", db, actor, campaign_id)
    if campaign_lead_id is None:
        st.caption("Pick a lead to see every step the pipeline took for it.")
        return
    trace = monitor.enrolment_trace(db, actor, campaign_lead_id)
    if trace.campaign_id != campaign_id:
        st.info(f"Lead #{campaign_lead_id} belongs to campaign #{trace.campaign_id}.")
    st.markdown(f"**{md(trace.lead_name)}**" + (f" at {md(trace.company)}" if trace.company else "")
                + f" · {lead_status_word(trace.status)}"
                + (f": {md(trace.status_reason)}" if trace.status_reason else ""))
    cost, tokens, step = st.columns(3)
    cost.metric("Cost", format_usd(trace.cost_microusd))
    tokens.metric("Tokens in / out", f"{trace.input_tokens:,} / {trace.output_tokens:,}")
    step.metric("Step · variant", f"{step_name(trace.step)} · {md(trace.variant)}")
    st.caption(f"Trace id: `{trace.trace_id or 'none yet'}`"
               + (f" (earlier runs: {', '.join(trace.trace_ids[:-1])})" if len(trace.trace_ids) > 1
                  else ""))
    if trace.error:
        st.error(md(trace.error))  # provider and guard errors quote the lead and the draft
    log_tab, draft_tab, sent_tab, calls_tab = st.tabs(["Log", "Draft", "Sent", "Model calls"])
    with log_tab:
        st.container(key="monitor_lead_log").dataframe(
            [{"when": e.created_at.strftime("%Y-%m-%d %H:%M:%S"), "node": e.node, "level": e.level,
              "message": e.message, "trace": (e.trace_id or "")[:8]} for e in trace.events],
            hide_index=True, width="stretch")
    with draft_tab:
        if trace.draft_subject:
            st.text_input("Subject", trace.draft_subject, disabled=True, key="monitor_draft_subject")
        if trace.draft_body:
            st.text_area("Draft", trace.draft_body, disabled=True, key="monitor_draft_body")
        else:
            st.caption("No draft yet.")
        if trace.facts:
            st.container(key="monitor_lead_facts").dataframe(trace.facts, hide_index=True, width="stretch")
    with sent_tab:
        if not trace.messages:
            st.caption("Nothing sent to this lead yet.")
        for message in trace.messages:
            when = message.sent_at.strftime("%Y-%m-%d %H:%M") if message.sent_at else "not sent"
            st.markdown(f"{step_name(message.step).capitalize()} to {md(message.to_address)} via "
                        f"{md(message.provider)}: **{message_status_word(message.status)}** ({when})")
            st.code(message.body, language=None, wrap_lines=True)
    with calls_tab:
        st.container(key="monitor_lead_calls").dataframe(
            [{"node": c.node, "model": c.model, "tokens in": c.input_tokens,
              "tokens out": c.output_tokens, "cost": format_usd(c.cost_microusd),
              "ms": c.latency_ms, "error": c.error} for c in trace.calls],
            hide_index=True, width="stretch")
