"""Reports for a period: the funnel per campaign and broken down, replies per day, who did what."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.analytics import activity, funnel
from core.analytics.period import Period, Preset
from core.permissions import Actor, Permission
from pages.common import get_db, md, require_page, run_action
from pages.widgets import downloads
from pages.widgets import period as period_picker

CACHE_SECONDS = 60
BREAKDOWN_LABELS: dict[funnel.Breakdown, str] = {
    "variant": "A/B variant", "industry": "Industry", "title": "Title", "hour": "Hour of first send (UTC)"}
RATES = {rate: st.column_config.NumberColumn(format="percent")
         for rate in ("delivery_rate", "reply_rate", "opt_out_rate")}


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Counting the funnel…")
def load_funnel(tenant_id: int, role: str, period: Period, _actor: Actor) -> pd.DataFrame:
    return funnel.funnel_by_campaign(get_db(), _actor, period)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def load_totals(tenant_id: int, role: str, period: Period, _actor: Actor) -> pd.Series:
    return funnel.funnel_totals(get_db(), _actor, period)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Breaking the funnel down…")
def load_breakdown(tenant_id: int, role: str, campaign_id: int, by: funnel.Breakdown, period: Period,
                   _actor: Actor) -> pd.DataFrame:
    return funnel.funnel_breakdown(get_db(), _actor, campaign_id, by, period)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Counting replies…")
def load_replies(tenant_id: int, role: str, period: Period, _actor: Actor) -> pd.DataFrame:
    return activity.replies_over_time(get_db(), _actor, period)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Reading the audit log…")
def load_activity(tenant_id: int, role: str, period: Period, _actor: Actor) -> pd.DataFrame:
    return activity.user_activity(get_db(), _actor, period)


def replies_section(period: Period) -> None:
    st.subheader("Replies over time")
    by_day = run_action(load_replies, actor.tenant_id, actor.role.value, period, _actor=actor)
    if by_day is None:
        return
    contacted, replied = int(by_day["contacted"].sum()), int(by_day["replied"].sum())
    st.caption(f"Per UTC day, {period.describe()}: leads whose first message went out that day, and "
               f"leads that replied that day. In all: {contacted:,} first contacted, {replied:,} replied.")
    st.plotly_chart(activity.replies_figure(by_day, period), key="reports_replies_chart")


def activity_section(period: Period) -> None:
    st.subheader("Activity by user")
    table = run_action(load_activity, actor.tenant_id, actor.role.value, period, _actor=actor)
    if table is None:
        return
    if table.empty:
        st.info(f"Nobody did anything the audit log records in {period.describe()}.")
        return
    st.caption(f"From the audit log, {period.describe()}. \"system\" is the job runner.")
    st.container(key="reports_activity").dataframe(table, hide_index=True)
    if actor.can(Permission.export_reports):
        downloads.show(table, f"leadflow-activity-{period.slug()}", sheet_name="Activity",
                       key="reports_activity_download")


actor = require_page(Permission.view_reports)
st.title("Reports")
period = period_picker.show("reports_period", default=Preset.all_time)
if period is None:
    st.stop()
by_campaign = run_action(load_funnel, actor.tenant_id, actor.role.value, period, _actor=actor)
if by_campaign is None:
    st.stop()
if by_campaign.empty:
    st.info("No campaigns yet: the funnel fills in once a campaign starts sending.")
    st.stop()

st.subheader("Funnel by campaign")
st.caption(f"Leads enrolled in {period.describe()}. Sent and delivered count each enrolment's first "
           "message; undelivered counts first messages the carrier reported it could not deliver (not "
           "counted as sent); opted out counts leads who opted out after they were enrolled. Rates "
           "are shares of the sent. The chart counts a lead once however many campaigns it is in; the table "
           "counts it in each of them.")
chart, table = st.columns([1, 2])
totals = run_action(load_totals, actor.tenant_id, actor.role.value, period, _actor=actor)
if totals is not None:
    chart.plotly_chart(funnel.funnel_figure(totals, "All campaigns, each lead once"),
                       key="reports_total_funnel")
table.container(key="reports_funnel").dataframe(by_campaign.drop(columns="campaign_id"), hide_index=True,
                                                column_config=RATES)
if actor.can(Permission.export_reports):
    downloads.show(by_campaign, f"leadflow-funnel-by-campaign-{period.slug()}", sheet_name="Funnel",
                   key="reports_funnel_download")

st.subheader("One campaign, broken down")
names = dict(zip(by_campaign["campaign_id"], by_campaign["campaign"], strict=True))
enrolled = by_campaign.loc[by_campaign["enrolled"] > 0, "campaign_id"]
default = list(names).index(enrolled.iloc[0]) if not enrolled.empty else 0
campaign_id = st.selectbox("Campaign", list(names), index=default, format_func=names.__getitem__,
                           key="reports_campaign")
by = st.radio("By", list(BREAKDOWN_LABELS), format_func=BREAKDOWN_LABELS.__getitem__,
              horizontal=True, key="reports_breakdown")
breakdown = run_action(load_breakdown, actor.tenant_id, actor.role.value, int(campaign_id), by, period,
                       _actor=actor)
if breakdown is not None and int(breakdown["enrolled"].sum()) == 0:
    st.info(f"Nothing to break down yet: {md(names[campaign_id])} has no "
            f"{'sends' if by == 'hour' else 'enrolled leads'}"
            + ("." if period.is_all_time else f" enrolled in {period.describe()}."))
elif breakdown is not None:
    st.plotly_chart(funnel.breakdown_figure(breakdown, by), key="reports_breakdown_chart")
    st.container(key="reports_breakdown_table").dataframe(breakdown, hide_index=True, column_config=RATES)
    if actor.can(Permission.export_reports):
        downloads.show(breakdown, f"leadflow-funnel-{campaign_id}-by-{by}-{period.slug()}",
                       sheet_name=f"By {by}", key="reports_breakdown_download")

replies_section(period)
if actor.can(Permission.view_audit_log):
    activity_section(period)
