"""Overview: the tenant's figures at a glance, and what to do first on an empty account."""

from __future__ import annotations

import streamlit as st

from core.inbound.inbox import replies_waiting
from core.permissions import Actor, Permission
from core.reports import OverviewFigures, format_usd, overview_figures
from core.text import plural
from pages.common import get_db, md, require_page

actor = require_page(Permission.view_overview)


@st.cache_data(ttl=15, show_spinner=False)
def load_figures(tenant_id: int, _actor: Actor) -> OverviewFigures:
    return overview_figures(get_db(), _actor)


@st.cache_data(ttl=15, show_spinner=False)
def load_replies_waiting(tenant_id: int, _actor: Actor) -> int:
    return replies_waiting(get_db(), _actor)


figures = load_figures(actor.tenant_id, actor)
waiting = load_replies_waiting(actor.tenant_id, actor)
st.title("Overview")

if figures.is_empty:
    st.info(
        "Nothing here yet. **Start by importing leads** (a CSV or XLSX export from your CRM) on "
        "the Leads page, then write a campaign and start it. An admin or the owner can import "
        "leads; managers write and run campaigns."
    )

active = sum(figures.campaigns_by_status.get(s, 0) for s in ("running", "scheduled", "paused"))
budget = figures.monthly_budget_microusd
reply_rate = figures.reply_rate
cols = st.columns(6)
cols[0].metric("Leads", f"{figures.leads:,}")
cols[1].metric("Active campaigns", active)
cols[2].metric("Messages sent today (UTC)", f"{figures.messages_sent_today:,}")
cols[3].metric(
    "Reply rate",
    "n/a" if reply_rate is None else f"{reply_rate:.1%}",
    help=f"{plural(figures.leads_replied, 'lead')} replied of "
    f"{plural(figures.leads_contacted, 'lead')} contacted (each lead counted once).",
)
cols[4].metric("Replies waiting", f"{waiting:,}",
               help="Replies no person has handled yet: answer them in the Inbox.")
cols[5].metric(
    "Spend this month",
    format_usd(figures.spend_this_month_microusd),
    help=f"Monthly budget: {format_usd(budget)}" if budget else "No monthly budget set.",
)
if budget:
    st.progress(min(1.0, figures.spend_this_month_microusd / budget),
                text=f"{figures.spend_this_month_microusd / budget:.0%} of the monthly budget")

st.subheader("Running campaigns")
if figures.running_campaigns:
    for campaign in figures.running_campaigns:
        spend = format_usd(campaign.spent_microusd) + (
            f" of {format_usd(campaign.budget_cap_microusd)}" if campaign.budget_cap_microusd else "")
        # Escaped: the name is anyone's text, and two "$" amounts would read as a LaTeX formula.
        st.progress(campaign.progress,
                    text=f"**{md(campaign.name)}** · {campaign.status} · {campaign.done:,} of "
                    f"{plural(campaign.enrolled, 'lead')} done · {md(spend)}")
    st.caption("The Run monitor shows each run live.")
else:
    st.caption("No campaign is running, scheduled or paused.")

left, right = st.columns(2)
with left:
    st.subheader("Campaigns by status")
    if figures.campaigns_by_status:
        st.container(key="overview_campaigns").dataframe(
            [{"status": k, "campaigns": v} for k, v in sorted(figures.campaigns_by_status.items())],
            hide_index=True, width="stretch",
        )
    else:
        st.caption("No campaigns yet.")
with right:
    st.subheader("Recent imports")
    if figures.recent_imports:
        st.container(key="overview_imports").dataframe(
            [{"file": i.file_name, "imported": i.imported, "rejected": i.rejected,
              "when": i.created_at.strftime("%Y-%m-%d %H:%M")} for i in figures.recent_imports],
            hide_index=True, width="stretch",
        )
    else:
        st.caption("No imports yet.")
