"""Campaigns page, the preview: pick a lead of the audience and see its research, draft, segments and cost."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.campaign_editor import audience_leads, lead_instructions, step_choices, variant_choices
from core.campaigns import CampaignView
from core.config import ConfigError
from core.db import Database
from core.permissions import Actor
from core.reports import format_usd
from core.text import plural
from pages.common import get_settings, md, run_action, show_error

if TYPE_CHECKING:
    from core.pipeline.service import PipelineRuntime, PreviewResult

PAGE_SIZE = 50


@st.cache_resource(show_spinner=False)
def get_runtime(_db: Database) -> PipelineRuntime:
    """The models and senders previews use, built once per server at the first preview.

    Their model calls pass the shared gate, as a worker's do: the provider's rate limits, the
    campaign's cap and the tenant's monthly budget. The model stack (LangChain, LangGraph, the
    OpenAI client) loads here, on the first click, not when the page opens: it takes longer to
    import than the whole page takes to render.
    """
    from core.pipeline.runtime import gated_runtime

    return gated_runtime(_db, get_settings())


def _preview(db: Database, actor: Actor, campaign_id: int, lead_id: int, step: int,
             variant: str | None) -> PreviewResult | None:
    from core.pipeline.service import preview

    try:
        runtime = get_runtime(db)
    except ConfigError as exc:  # e.g. the openai provider without a key: say which setting
        show_error(f"the preview cannot run: {exc}")
        return None
    return preview(db, runtime, actor, campaign_id, lead_id, step=step, variant=variant)


def pick_lead(db: Database, actor: Actor, key: str, campaign_id: int) -> int | None:
    """A search box and a selectbox of the first matching leads of the audience (never all)."""
    search = st.text_input(
        "Find a lead of the audience", key=f"{key}_search", placeholder="name, company, phone, email or #id"
    )
    leads = run_action(audience_leads, db, actor, campaign_id, search=search, page_size=PAGE_SIZE)
    if not leads:
        if leads is not None:
            st.info(
                "No lead of this campaign's audience matches."
                if search
                else "The audience is empty: widen the filters or import leads."
            )
        return None
    labels = {lead.id: lead.label for lead in leads}
    if len(leads) == PAGE_SIZE:
        st.caption(f"The first {PAGE_SIZE} matches: type to narrow them.")
    picked: int = st.selectbox("Lead", list(labels), format_func=labels.__getitem__, key=f"{key}_lead")
    return picked


def pick_step_and_variant(key: str, campaign: CampaignView) -> tuple[int, str | None]:
    """Which step and which A/B variant to draft; by default the first touch and the lead's own."""
    steps = step_choices(campaign)
    step_column, variant_column = st.columns(2)
    step: int = step_column.selectbox("Step", list(steps), format_func=steps.__getitem__,
                                      key=f"{key}_step")
    variants = variant_choices(campaign)
    if len(variants) == 1:
        return step, None
    labels = {"": "The lead's own variant"} | {name: f"Variant {name}" for name in variants}
    variant: str = variant_column.selectbox("A/B variant", list(labels), format_func=labels.__getitem__,
                                            key=f"{key}_variant")
    return step, variant or None


def _show_result(result: dict[str, Any], channel: str) -> None:
    if result["status"] != "ready":
        st.warning(f"This lead would not get a message: {md(result['status'])}"
                   + (f" ({md(result['reason'])})" if result["reason"] else ""))
    if result["facts"]:
        st.markdown("**Research facts**")
        st.container(key="preview_facts").dataframe(pd.DataFrame(result["facts"]), hide_index=True)
    if result["body"] is not None:
        where = "first touch" if not result["step"] else f"follow-up {result['step']}"
        st.markdown(f"**Draft** ({where}, variant {md(result['variant'])})")
        if channel == "email":
            st.text_input("Subject", value=result["subject"] or "", disabled=True)
        st.code(result["body"], language=None, wrap_lines=True)
    length, segments, encoding, cost = st.columns(4)
    length.metric("Length", plural(len(result["body"] or ""), "character"))
    segments.metric("SMS segments" if channel == "sms" else "Segments", result["segments"])
    encoding.metric("Encoding", md(result["encoding"] or "n/a"))
    cost.metric("Cost of this preview", format_usd(result["cost_microusd"]),
                help=f"{result['input_tokens']:,} input and {result['output_tokens']:,} output tokens")
    if result["body"] is not None and result.get("instructions"):
        with st.expander("The campaign's instructions for this lead (merge fields filled)"):
            st.code(result["instructions"], language=None, wrap_lines=True)
    if result["problems"]:
        # The guard quotes the model's draft: each problem escaped, one list item per line.
        st.error("The guard found problems:\n\n" + "\n".join(f"- {md(p)}" for p in result["problems"]))
    elif result["body"] is not None and result["guard_passed"]:
        st.success("The guard passed this draft.")


def show(db: Database, actor: Actor, campaign: CampaignView) -> None:
    key = f"cmp{campaign.id}_preview"
    st.caption(
        "The preview drafts for the saved campaign (save your changes first); nothing is "
        "sent and no lead is enrolled. Its model calls count as spend."
    )
    lead_id = pick_lead(db, actor, key, campaign.id)
    if lead_id is None:
        return
    step, variant = pick_step_and_variant(key, campaign)
    if step:
        st.caption("A follow-up's preview has no earlier message of this lead to refer to.")
    if st.button("Preview the draft", key=f"{key}_run", type="primary"):
        with st.spinner("Researching and drafting…"):
            result = run_action(_preview, db, actor, campaign.id, lead_id, step, variant)
        if result is not None:
            # A plain dict: session state holds no objects of our classes.
            shown = dataclasses.asdict(result) | {"step": step, "instructions": run_action(
                lead_instructions, db, actor, campaign.id, lead_id, step=step, variant=result.variant)}
            st.session_state[f"{key}_result"] = shown
    result_state = st.session_state.get(f"{key}_result")
    if result_state is not None:
        _show_result(result_state, campaign.channel)
