"""LLM spend: by day, campaign, model and pipeline node; tokens; unit costs; the budget burn-down.

One GROUP BY over `llm_calls` at (day, campaign, model, node) grain feeds every spend view, so the
table is scanned once per range and pandas only reshapes a few thousand aggregate rows.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.analytics import charts
from core.db import Database
from core.errors import ValidationError
from core.models import Campaign, CampaignLead, LLMCall, Tenant
from core.money import MICROUSD_PER_USD
from core.permissions import Actor, Permission

MAX_RANGE_DAYS = 366
NO_CAMPAIGN = "(no campaign)"
SpendDimension = Literal["campaign", "model", "node"]
DETAIL_COLUMNS = ["day", "campaign_id", "campaign", "model", "node", "calls", "input_tokens",
                  "output_tokens", "cost_microusd", "cost_usd"]
UNIT_COST_COLUMNS = ["campaign_id", "campaign", "leads_drafted", "replies", "spend_microusd",
                     "cost_per_lead_microusd", "cost_per_reply_microusd"]


@dataclass(frozen=True)
class Burndown:
    """This month's spend against the monthly budget, with a linear end-of-month projection."""

    month_start: date
    days_in_month: int
    daily: pd.DataFrame  # day, spend_microusd, cumulative_microusd: every day of the month so far
    spent_microusd: int
    projected_microusd: int
    budget_microusd: int | None

    @property
    def remaining_microusd(self) -> int | None:
        return None if self.budget_microusd is None else self.budget_microusd - self.spent_microusd

    @property
    def projected_over_budget(self) -> bool:
        return self.budget_microusd is not None and self.projected_microusd > self.budget_microusd


@dataclass(frozen=True)
class CostReport:
    """Spend in a date range (UTC days, inclusive) and the campaigns' unit costs."""

    start: date
    end: date
    detail: pd.DataFrame  # DETAIL_COLUMNS: one row per (day, campaign, model, node)
    unit_costs: pd.DataFrame  # UNIT_COST_COLUMNS: one row per campaign with spend in the range
    burndown: Burndown

    @property
    def total_microusd(self) -> int:
        return int(self.detail["cost_microusd"].sum())

    @property
    def is_empty(self) -> bool:
        return self.detail.empty


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def as_dates(values: pd.Series) -> pd.Series:
    # PostgreSQL's date() returns dates, SQLite's returns 'YYYY-MM-DD' text.
    return pd.to_datetime(values.astype(str)).dt.date


def _spend_detail(session: Session, start: date, end: date) -> pd.DataFrame:
    day = func.date(LLMCall.created_at)
    rows = session.execute(
        select(
            day.label("day"),
            LLMCall.campaign_id,
            LLMCall.model,
            LLMCall.node,
            func.count(),  # not count(id): the covering index has no id, count(*) stays index-only
            func.sum(LLMCall.input_tokens),
            func.sum(LLMCall.output_tokens),
            func.sum(LLMCall.cost_microusd),
        )
        .where(LLMCall.created_at >= _day_start(start),
               LLMCall.created_at < _day_start(end + timedelta(days=1)))
        .group_by(day, LLMCall.campaign_id, LLMCall.model, LLMCall.node)
    ).all()
    detail = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=["day", "campaign_id", "model", "node", "calls", "input_tokens", "output_tokens",
                 "cost_microusd"],
    )
    names = _campaign_names(session, {int(c) for c in detail["campaign_id"].dropna()})
    detail["day"] = as_dates(detail["day"]) if not detail.empty else detail["day"]
    detail["campaign_id"] = detail["campaign_id"].astype("Int64")
    detail["campaign"] = [NO_CAMPAIGN if pd.isna(c) else names.get(int(c), f"campaign {c}")
                          for c in detail["campaign_id"]]
    for column in ("calls", "input_tokens", "output_tokens", "cost_microusd"):
        detail[column] = detail[column].astype("int64")
    detail["cost_usd"] = detail["cost_microusd"] / MICROUSD_PER_USD
    return detail[DETAIL_COLUMNS].sort_values(["day", "campaign", "model", "node"], ignore_index=True)


def _campaign_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all())


def _unit_costs(session: Session, campaign_ids: list[int]) -> pd.DataFrame:
    if not campaign_ids:
        return pd.DataFrame(columns=UNIT_COST_COLUMNS)
    drafted = func.count().filter(CampaignLead.cost_microusd > 0)
    rows = session.execute(
        select(CampaignLead.campaign_id, drafted, func.count(CampaignLead.replied_at),
               func.coalesce(func.sum(CampaignLead.cost_microusd), 0))
        .where(CampaignLead.campaign_id.in_(campaign_ids))
        .group_by(CampaignLead.campaign_id)
    ).all()
    names = _campaign_names(session, set(campaign_ids))
    units = pd.DataFrame([tuple(r) for r in rows],
                         columns=["campaign_id", "leads_drafted", "replies", "spend_microusd"])
    units["campaign"] = units["campaign_id"].map(names)
    for column in ("leads_drafted", "replies", "spend_microusd"):
        units[column] = units[column].astype("int64")
    units["cost_per_lead_microusd"] = _per(units["spend_microusd"], units["leads_drafted"])
    units["cost_per_reply_microusd"] = _per(units["spend_microusd"], units["replies"])
    return units[UNIT_COST_COLUMNS].sort_values("spend_microusd", ascending=False, ignore_index=True)


def _per(amount: pd.Series, count: pd.Series) -> pd.Series:
    """amount / count rounded to whole micro-dollars; missing (not infinite) where count is 0."""
    return (amount / count.where(count > 0)).round().astype("Int64")


def _month_daily_spend(session: Session, month_start: date, detail: pd.DataFrame | None) -> dict[date, int]:
    """This month's spend per day: from the range's aggregate when it covers the month so far."""
    if detail is not None:
        in_month = detail[detail["day"] >= month_start]
        return {d: int(c) for d, c in in_month.groupby("day")["cost_microusd"].sum().items()}
    day = func.date(LLMCall.created_at)
    rows = session.execute(
        select(day, func.sum(LLMCall.cost_microusd))
        .where(LLMCall.created_at >= _day_start(month_start))
        .group_by(day)
    ).all()
    return {pd.Timestamp(str(d)).date(): int(c) for d, c in rows}


def _burndown(session: Session, tenant_id: int, now: datetime, spend_by_day: dict[date, int]) -> Burndown:
    today = now.astimezone(UTC).date()
    month_start = today.replace(day=1)
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    days = [month_start + timedelta(days=i) for i in range(today.day)]
    daily = pd.DataFrame({"day": days, "spend_microusd": [spend_by_day.get(d, 0) for d in days]})
    daily["cumulative_microusd"] = daily["spend_microusd"].cumsum()
    spent = int(daily["spend_microusd"].sum())
    # The month so far, in days (at least one, so an early-morning figure is not extrapolated 30x).
    elapsed = max(1.0, (now - _day_start(month_start)).total_seconds() / 86_400)
    projected = round(spent / elapsed * days_in_month)
    budget = session.scalar(select(Tenant.monthly_budget_microusd).where(Tenant.id == tenant_id))
    return Burndown(month_start, days_in_month, daily, spent, max(spent, projected), budget)


def cost_report(
    db: Database, actor: Actor, *, start: date, end: date, now: datetime | None = None
) -> CostReport:
    """Spend from `start` to `end` (UTC days, inclusive), unit costs, and this month's burn-down."""
    actor.require(Permission.view_costs)
    if start > end:
        raise ValidationError(f"the start date {start} is after the end date {end}")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ValidationError(f"pick a range of at most {MAX_RANGE_DAYS} days")
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        detail = _spend_detail(session, start, end)
        campaign_ids = sorted({int(c) for c in detail["campaign_id"].dropna()})
        units = _unit_costs(session, campaign_ids)
        today = now.astimezone(UTC).date()
        month_start = today.replace(day=1)
        covers_month = start <= month_start and end >= today
        month_spend = _month_daily_spend(session, month_start, detail if covers_month else None)
        burndown = _burndown(session, actor.tenant_id, now, month_spend)
    return CostReport(start, end, detail, units, burndown)


# --- views of a report (pandas over the aggregate rows) --------------------------------------


def _with_usd(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["cost_usd"] = frame["cost_microusd"] / MICROUSD_PER_USD
    return frame


def spend_by_day(report: CostReport) -> pd.DataFrame:
    """Every day of the range (days without calls as 0): calls, tokens, cost."""
    days = pd.DataFrame({"day": [report.start + timedelta(days=i)
                                 for i in range((report.end - report.start).days + 1)]})
    sums = report.detail.groupby("day", as_index=False)[
        ["calls", "input_tokens", "output_tokens", "cost_microusd"]].sum()
    merged = days.merge(sums, on="day", how="left").fillna(0)
    for column in ("calls", "input_tokens", "output_tokens", "cost_microusd"):
        merged[column] = merged[column].astype("int64")
    return _with_usd(merged)


def spend_by(report: CostReport, dimension: SpendDimension) -> pd.DataFrame:
    """Calls, tokens and cost per campaign, model or node, the most expensive first."""
    if dimension not in ("campaign", "model", "node"):
        raise ValidationError(f"cannot group spend by '{dimension}'")
    sums = report.detail.groupby(dimension, as_index=False)[
        ["calls", "input_tokens", "output_tokens", "cost_microusd"]].sum()
    sums = sums.sort_values("cost_microusd", ascending=False, ignore_index=True)
    return _with_usd(sums)


def unit_costs_usd(report: CostReport) -> pd.DataFrame:
    """The unit costs with money in dollars, for a table or a download."""
    units = report.unit_costs
    return pd.DataFrame({
        "campaign": units["campaign"],
        "leads drafted": units["leads_drafted"],
        "replies": units["replies"],
        "spend (USD)": units["spend_microusd"] / MICROUSD_PER_USD,
        "cost per lead (USD)": units["cost_per_lead_microusd"].astype("Float64") / MICROUSD_PER_USD,
        "cost per reply (USD)": units["cost_per_reply_microusd"].astype("Float64") / MICROUSD_PER_USD,
    })


def spend_by_day_figure(by_day: pd.DataFrame) -> go.Figure:
    """Spend per day as bars on a day axis; "No spend yet" when the range has none."""
    title = "Spend by day"
    if by_day.empty or not by_day["cost_usd"].any():
        return charts.empty_figure(title, "No spend yet")
    figure = go.Figure(go.Bar(x=by_day["day"], y=by_day["cost_usd"], name="spend",
                              hovertemplate="%{x}: %{y:$,.4~f}<extra></extra>"))
    figure.update_layout(title=title, xaxis=charts.day_axis(by_day["day"].min(), by_day["day"].max()),
                         yaxis=charts.money_axis(), margin=charts.MARGIN)
    return figure


def spend_by_figure(by: pd.DataFrame, dimension: SpendDimension) -> go.Figure:
    title = f"Spend by {dimension}"
    if by.empty or not by["cost_usd"].any():
        return charts.empty_figure(title, "No spend yet")
    figure = go.Figure(go.Bar(x=by["cost_usd"], y=by[dimension], orientation="h"))
    figure.update_layout(title=title, xaxis=charts.money_axis(),
                         yaxis={"autorange": "reversed"}, margin=charts.MARGIN)
    return figure


def tokens_figure(by_day: pd.DataFrame) -> go.Figure:
    title = "Tokens by day"
    if by_day.empty or not (by_day["input_tokens"].any() or by_day["output_tokens"].any()):
        return charts.empty_figure(title, "No tokens used yet")
    figure = go.Figure([
        go.Bar(x=by_day["day"], y=by_day["input_tokens"], name="input tokens"),
        go.Bar(x=by_day["day"], y=by_day["output_tokens"], name="output tokens"),
    ])
    figure.update_layout(title=title, barmode="stack",
                         xaxis=charts.day_axis(by_day["day"].min(), by_day["day"].max()),
                         yaxis=charts.count_axis("tokens"), legend=charts.LEGEND_ABOVE,
                         margin=charts.MARGIN_WITH_LEGEND)
    return figure


def burndown_figure(burndown: Burndown) -> go.Figure:
    """Remaining budget day by day and where it is heading (spend alone when there is no budget)."""
    daily = burndown.daily
    month_end = burndown.month_start + timedelta(days=burndown.days_in_month - 1)
    with_budget = burndown.budget_microusd is not None
    title = "Budget burn-down" if with_budget else "Spend this month"
    if not with_budget and burndown.spent_microusd == 0:
        return charts.empty_figure(title, "No spend yet this month")
    last_day = daily["day"].iloc[-1]
    base = burndown.budget_microusd or 0
    sign = -1 if with_budget else 1
    actual = (base + sign * daily["cumulative_microusd"]) / MICROUSD_PER_USD
    projected_end = (base + sign * burndown.projected_microusd) / MICROUSD_PER_USD
    label = "remaining budget" if with_budget else "spend this month"
    figure = go.Figure([
        go.Scatter(x=daily["day"], y=actual, mode="lines+markers", name=label),
        go.Scatter(x=[last_day, month_end], y=[actual.iloc[-1], projected_end], mode="lines",
                   line={"dash": "dash"}, name="projection"),
    ])
    if with_budget:
        figure.add_hline(y=0, line={"color": "red", "width": 1})
    figure.update_layout(title=title, xaxis=charts.day_axis(burndown.month_start, month_end),
                         yaxis=charts.money_axis(), legend=charts.LEGEND_ABOVE,
                         margin=charts.MARGIN_WITH_LEGEND)
    return figure


# --- one campaign's spend --------------------------------------------------------------------

@dataclass(frozen=True)
class SpendLine:
    """Model calls of one campaign at one (model, node): how many, their tokens and cost."""

    model: str
    node: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_microusd: int


def campaign_spend_in(session: Session, campaign_id: int) -> list[SpendLine]:
    """A campaign's model spend since it was created, one line per (model, node), in the caller's
    session (a tenant's; the caller checked the role). One GROUP BY over the campaign's model calls,
    previews included, as in `cost_report`."""
    rows = session.execute(
        select(LLMCall.model, LLMCall.node, func.count(), func.sum(LLMCall.input_tokens),
               func.sum(LLMCall.output_tokens), func.sum(LLMCall.cost_microusd))
        .where(LLMCall.campaign_id == campaign_id)
        .group_by(LLMCall.model, LLMCall.node)
    ).all()
    lines = [SpendLine(str(model), str(node), int(calls), int(tokens_in or 0), int(tokens_out or 0),
                       int(cost or 0))
             for model, node, calls, tokens_in, tokens_out, cost in rows]
    return sorted(lines, key=lambda line: (line.model, line.node))
