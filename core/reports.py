"""Figures for the dashboard, computed by SQL aggregates over indexed columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.models import (
    FINAL_ENROLMENT_STATUSES,
    LIVE_CAMPAIGN_STATUSES,
    Campaign,
    CampaignLead,
    Lead,
    LeadImport,
    LLMCall,
    Message,
    MessageStatus,
    Tenant,
)
from core.money import format_usd as format_usd  # re-exported: pages and core import it from here too
from core.permissions import Actor, Permission


@dataclass(frozen=True)
class RecentImport:
    id: int
    file_name: str
    imported: int
    rejected: int
    created_at: datetime


@dataclass(frozen=True)
class RunningCampaign:
    """A live campaign on the Overview: how far it has got."""

    id: int
    name: str
    status: str
    enrolled: int
    done: int
    spent_microusd: int
    budget_cap_microusd: int | None

    @property
    def progress(self) -> float:
        return self.done / self.enrolled if self.enrolled else 0.0


@dataclass(frozen=True)
class OverviewFigures:
    leads: int
    campaigns_by_status: dict[str, int]
    messages_sent_today: int
    spend_this_month_microusd: int
    monthly_budget_microusd: int | None
    recent_imports: list[RecentImport] = field(default_factory=list)
    # Reply rate: distinct leads who replied over distinct leads whose first message went out
    # (every campaign; a lead enrolled in several campaigns counts once).
    leads_contacted: int = 0
    leads_replied: int = 0
    running_campaigns: list[RunningCampaign] = field(default_factory=list)

    @property
    def reply_rate(self) -> float | None:
        return self.leads_replied / self.leads_contacted if self.leads_contacted else None

    @property
    def is_empty(self) -> bool:
        return self.leads == 0 and not self.campaigns_by_status


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def overview_figures(db: Database, actor: Actor, *, now: datetime | None = None) -> OverviewFigures:
    actor.require(Permission.view_overview)
    now = now or datetime.now(UTC)
    today = _start_of_day(now)
    month = today.replace(day=1)
    sent = (MessageStatus.sent.value, MessageStatus.delivered.value)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        leads = session.scalar(select(func.count(Lead.id))) or 0
        by_status = dict(
            session.execute(
                select(Campaign.status, func.count(Campaign.id)).group_by(Campaign.status)
            ).all()
        )
        sent_today = session.scalar(
            select(func.count(Message.id)).where(
                Message.created_at >= today, Message.status.in_(sent)
            )
        ) or 0
        spend = session.scalar(
            select(func.coalesce(func.sum(LLMCall.cost_microusd), 0)).where(
                LLMCall.created_at >= month
            )
        ) or 0
        budget = session.scalar(
            select(Tenant.monthly_budget_microusd).where(Tenant.id == actor.tenant_id)
        )
        # Leads, not enrolments: a lead in three campaigns is contacted once and, since a
        # reply marks every enrolment of the lead, replies once.
        contacted = session.scalar(
            select(func.count(func.distinct(Message.lead_id)))
            .where(Message.step == 0, Message.status.in_(sent))
        ) or 0
        replied = session.scalar(
            select(func.count(func.distinct(CampaignLead.lead_id)))
            .where(CampaignLead.replied_at.is_not(None))
        ) or 0
        running = _running_campaigns(session)
        imports = [
            RecentImport(i.id, i.file_name, i.rows_imported, i.rows_rejected, i.created_at)
            for i in session.scalars(
                select(LeadImport).order_by(LeadImport.created_at.desc()).limit(5)
            )
        ]
    return OverviewFigures(
        leads=leads,
        campaigns_by_status={str(k): int(v) for k, v in by_status.items()},
        messages_sent_today=int(sent_today),
        spend_this_month_microusd=int(spend),
        monthly_budget_microusd=budget,
        recent_imports=imports,
        leads_contacted=int(contacted),
        leads_replied=int(replied),
        running_campaigns=running,
    )


def _running_campaigns(session: Session, limit: int = 10) -> list[RunningCampaign]:
    """The live campaigns, newest first, with their enrolled and finished counts.

    One GROUP BY per campaign: each is a range of the (campaign_id, status) index, where one
    query over all of them at once is planned as a scan of the whole table.
    """
    live = session.execute(
        select(Campaign.id, Campaign.name, Campaign.status, Campaign.spent_microusd,
               Campaign.budget_cap_microusd)
        .where(Campaign.status.in_([s.value for s in LIVE_CAMPAIGN_STATUSES]))
        .order_by(Campaign.created_at.desc()).limit(limit)
    ).all()
    final = {s.value for s in FINAL_ENROLMENT_STATUSES}
    counts: dict[int, tuple[int, int]] = {}
    for row in live:
        by_status = session.execute(
            select(CampaignLead.status, func.count(CampaignLead.id))
            .where(CampaignLead.campaign_id == row[0]).group_by(CampaignLead.status)
        ).all()
        counts[row[0]] = (sum(n for _, n in by_status),
                          sum(n for status, n in by_status if status in final))
    return [
        RunningCampaign(id_, name, status, *counts.get(id_, (0, 0)), spent or 0, cap)
        for id_, name, status, spent, cap in live
    ]


