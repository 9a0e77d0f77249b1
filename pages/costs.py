"""Costs: LLM spend by day, campaign, model and node; tokens; unit costs; the budget burn-down."""

from __future__ import annotations

from datetime import UTC, date, datetime

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.analytics import costs
from core.permissions import Actor, Permission
from core.reports import format_usd
from pages.common import get_db, require_page, run_action
from pages.widgets import downloads

CACHE_SECONDS = 60
USD = st.column_config.NumberColumn(format="$%.4f")


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Adding up the spend…")
def load_cost_report(tenant_id: int, role: str, start: date, end: date, _actor: Actor) -> costs.CostReport:
    return costs.cost_report(get_db(), _actor, start=start, end=end)


actor = require_page(Permission.view_costs)
st.title("Costs")

today = datetime.now(UTC).date()
picked = st.date_input("Days (UTC)", value=(today.replace(day=1), today), max_value=today,
                       key="costs_range")
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last day of the range.")
    st.stop()
report = run_action(load_cost_report, actor.tenant_id, actor.role.value, picked[0], picked[1],
                    _actor=actor)
if report is None:
    st.stop()

burndown = report.burndown
spend, month, projected, budget = st.columns(4)
spend.metric("Spend in range", format_usd(report.total_microusd))
month.metric("Spend this month", format_usd(burndown.spent_microusd))
projected.metric("Projected month end", format_usd(burndown.projected_microusd),
                 delta="over budget" if burndown.projected_over_budget else None,
                 delta_color="inverse")
remaining = burndown.remaining_microusd
if remaining is None:
    budget.metric("Budget left", "no budget set")
elif remaining < 0:
    budget.metric("Budget left", f"over by {format_usd(-remaining)}")
else:
    budget.metric("Budget left", format_usd(remaining))
st.plotly_chart(costs.burndown_figure(burndown), key="costs_burndown")

if report.is_empty:
    st.info("No model calls in this range yet: spend shows here once a campaign drafts messages.")
    st.stop()

by_day = costs.spend_by_day(report)
day_tab, campaign_tab, model_tab, node_tab, tokens_tab, unit_tab = st.tabs(
    ["By day", "By campaign", "By model", "By node", "Tokens", "Per lead and reply"])
day_tab.plotly_chart(costs.spend_by_day_figure(by_day), key="costs_by_day")
dimension_tabs: dict[costs.SpendDimension, DeltaGenerator] = {
    "campaign": campaign_tab, "model": model_tab, "node": node_tab}
for dimension, tab in dimension_tabs.items():
    by = costs.spend_by(report, dimension)
    tab.plotly_chart(costs.spend_by_figure(by, dimension), key=f"costs_by_{dimension}")
    tab.container(key=f"costs_by_{dimension}_table").dataframe(
        by.drop(columns="cost_microusd"), hide_index=True, column_config={"cost_usd": USD})
tokens_tab.plotly_chart(costs.tokens_figure(by_day), key="costs_tokens")
unit_costs = costs.unit_costs_usd(report)
unit_tab.caption("Whole campaigns: LLM spend per lead drafted and per reply.")
unit_tab.container(key="costs_per_lead_table").dataframe(unit_costs, hide_index=True, column_config={
    column: USD for column in unit_costs.columns if column.endswith("(USD)")})

if actor.can(Permission.export_reports):
    st.caption("Spend per day, campaign, model and node:")
    downloads.show(report.detail, f"leadflow-costs-{report.start}-{report.end}", sheet_name="Costs",
                   key="costs_download")
