"""Figures for the dashboard, computed by SQL aggregates over indexed columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select

from core.db import Database
from core.models import Campaign, Lead, LeadImport, LLMCall, Message, MessageStatus, Tenant
from core.permissions import Actor, Permission


@dataclass(frozen=True)
class RecentImport:
    id: int
    file_name: str
    imported: int
    rejected: int
    created_at: datetime


@dataclass(frozen=True)
class OverviewFigures:
    leads: int
    campaigns_by_status: dict[str, int]
    messages_sent_today: int
    spend_this_month_microusd: int
    monthly_budget_microusd: int | None
    recent_imports: list[RecentImport] = field(default_factory=list)

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
    )


def format_usd(microusd: int | None) -> str:
    """Micro-dollars as dollars for people: $0.0042 for small sums, $1,234.50 for large ones."""
    if microusd is None:
        return "n/a"
    dollars = microusd / 1_000_000
    if dollars and abs(dollars) < 1:
        return f"${dollars:,.4f}"
    return f"${dollars:,.2f}"
