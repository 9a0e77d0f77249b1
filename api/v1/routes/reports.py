"""Reports: the funnel per campaign and variant, spend by day, campaign, model or node, one
campaign's report, and the Overview's figures; the same core reads as the dashboard's pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from api.v1.deps import ActorDep
from api.v1.models.reports import (
    CampaignFunnel,
    CampaignReport,
    CampaignSpend,
    CostReport,
    FunnelReport,
    FunnelTotals,
    Overview,
    RecentImport,
    RunningCampaign,
    SpendRow,
    VariantFunnel,
    money,
)
from core.analytics.campaign_report import campaign_report
from core.analytics.costs import cost_report, spend_by, spend_by_day
from core.analytics.funnel import funnel_breakdown, funnel_by_campaign, funnel_totals
from core.analytics.period import Period
from core.db import Database
from core.inbound.inbox import replies_waiting
from core.reports import overview_figures

router = APIRouter(tags=["reports"])

# The Costs page opens on the last 30 days; so does a cost report asked for without a range.
DEFAULT_COST_DAYS = 30

From = Annotated[date | None, Query(alias="from", description="First UTC day, YYYY-MM-DD")]
To = Annotated[date | None, Query(alias="to", description="Last UTC day, included")]


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


@router.get("/reports/funnel", response_model=FunnelReport)
def funnel(
    request: Request,
    actor: ActorDep,
    campaign_id: int | None = None,
    start: From = None,
    end: To = None,
) -> FunnelReport:
    """Enrolled, sent, delivered, replied, opted out per campaign (of the enrolments made in the
    range); with `campaign_id` that campaign alone and its A/B variants, else every campaign and
    the totals in distinct leads."""
    database, period = _database(request), Period(start, end)
    rows = funnel_by_campaign(database, actor, period, campaign_id=campaign_id)
    campaigns = [CampaignFunnel.of(row) for row in rows.to_dict("records")]
    if campaign_id is None:
        totals = FunnelTotals.of(funnel_totals(database, actor, period).to_dict())
        return FunnelReport(start=start, end=end, campaigns=campaigns, variants=None, totals=totals)
    variants = funnel_breakdown(database, actor, campaign_id, "variant", period)
    return FunnelReport(
        start=start,
        end=end,
        campaigns=campaigns,
        variants=[VariantFunnel.of(v) for v in variants.to_dict("records")],
        totals=None,
    )


@router.get("/reports/costs", response_model=CostReport)
def costs(
    request: Request,
    actor: ActorDep,
    group: Literal["day", "campaign", "model", "node"] = "day",
    start: From = None,
    end: To = None,
) -> CostReport:
    """Model spend in a range of UTC days (the last 30 by default): calls, tokens and cost per day
    (every day of the range), campaign, model or pipeline node, the most expensive first."""
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=DEFAULT_COST_DAYS - 1)
    report = cost_report(_database(request), actor, start=start, end=end)
    frame = spend_by_day(report) if group == "day" else spend_by(report, group)
    rows = [SpendRow.of(row[group], row) for row in frame.to_dict("records")]
    return CostReport(start=start, end=end, group=group, total=money(report.total_microusd), rows=rows)


@router.get("/campaigns/{campaign_id}/report", response_model=CampaignReport, tags=["campaigns"])
def report_of_campaign(request: Request, actor: ActorDep, campaign_id: int) -> CampaignReport:
    """The campaign's funnel, its funnel per A/B variant and its model spend by model and node."""
    report = campaign_report(_database(request), actor, campaign_id)
    return CampaignReport(
        campaign_id=campaign_id,
        funnel=CampaignFunnel.of(report.funnel),
        variants=[VariantFunnel.of(v) for v in report.variants],
        spend=CampaignSpend(
            total=money(report.spent_microusd),
            by_model=[SpendRow.of_total(t) for t in report.spend_by("model")],
            by_node=[SpendRow.of_total(t) for t in report.spend_by("node")],
        ),
    )


@router.get("/overview", response_model=Overview)
def overview(request: Request, actor: ActorDep) -> Overview:
    """The Overview page's figures: leads, campaigns by status, today's sends, the reply rate,
    replies waiting, this month's spend against the budget, the live campaigns, recent imports."""
    database = _database(request)
    figures = overview_figures(database, actor)
    budget = figures.monthly_budget_microusd
    return Overview(
        leads=figures.leads,
        campaigns_by_status=figures.campaigns_by_status,
        messages_sent_today=figures.messages_sent_today,
        leads_contacted=figures.leads_contacted,
        leads_replied=figures.leads_replied,
        reply_rate=figures.reply_rate,
        replies_waiting=replies_waiting(database, actor),
        spend_this_month=money(figures.spend_this_month_microusd),
        monthly_budget=money(budget) if budget is not None else None,
        running_campaigns=[
            RunningCampaign(
                id=c.id,
                name=c.name,
                status=c.status,
                enrolled=c.enrolled,
                done=c.done,
                progress=c.progress,
                spent=money(c.spent_microusd),
                budget_cap=money(c.budget_cap_microusd) if c.budget_cap_microusd else None,
            )
            for c in figures.running_campaigns
        ],
        recent_imports=[
            RecentImport(
                id=i.id,
                file_name=i.file_name,
                imported=i.imported,
                rejected=i.rejected,
                created_at=i.created_at,
            )
            for i in figures.recent_imports
        ],
    )
