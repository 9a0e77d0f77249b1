"""Reports over the wire: funnels per campaign and variant, spend by day, campaign, model or node,
one campaign's report and the Overview's figures. Money is `Money`, rates are fractions (0.25)."""

from __future__ import annotations

from datetime import date
from typing import Any, Self

from pydantic import BaseModel, Field

from api.v1.schemas import Money, UtcDateTime
from core.analytics.campaign_report import SpendTotal


def money(microusd: Any) -> Money:
    value = Money.of_microusd(int(microusd))
    assert value is not None
    return value


class Stages(BaseModel):
    """The funnel's stages (enrolments; a stage counts the first touch only) and their rates."""

    enrolled: int
    sent: int
    delivered: int
    replied: int
    opted_out: int
    delivery_rate: float
    reply_rate: float
    opt_out_rate: float

    @classmethod
    def stages_of(cls, row: dict[str, Any]) -> dict[str, Any]:
        """The shape's fields from a row of core's funnel frames (numpy numbers made plain)."""
        return {name: _plain(name, row[name]) for name in cls.model_fields}


COUNTS = {"enrolled", "sent", "delivered", "replied", "opted_out", "undelivered", "campaign_id"}


def _plain(name: str, value: Any) -> Any:
    if name.endswith("_rate"):
        return float(value)
    if name in COUNTS:
        return int(value)
    return str(value)


class CampaignFunnel(Stages):
    campaign_id: int
    campaign: str
    channel: str
    status: str
    undelivered: int = Field(description="First touches the carrier could not deliver")

    @classmethod
    def of(cls, row: dict[str, Any]) -> Self:
        return cls(**cls.stages_of(row))


class VariantFunnel(Stages):
    variant: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> Self:
        return cls(**cls.stages_of(row))


class FunnelTotals(Stages):
    """Every campaign together, in distinct leads (a lead in three campaigns counts once)."""

    @classmethod
    def of(cls, row: dict[str, Any]) -> Self:
        return cls(**cls.stages_of(row))


class FunnelReport(BaseModel):
    start: date | None = Field(description="First UTC day of the enrolments counted; null: all time")
    end: date | None
    campaigns: list[CampaignFunnel]
    variants: list[VariantFunnel] | None = Field(
        description="The campaign's funnel per A/B variant, when `campaign_id` was given"
    )
    totals: FunnelTotals | None = Field(description="Every campaign in distinct leads, without `campaign_id`")


class SpendRow(BaseModel):
    key: str = Field(description="The day (YYYY-MM-DD), campaign name, model or node")
    calls: int
    input_tokens: int
    output_tokens: int
    cost: Money

    @classmethod
    def of_total(cls, total: SpendTotal) -> Self:
        return cls(
            key=total.key,
            calls=total.calls,
            input_tokens=total.input_tokens,
            output_tokens=total.output_tokens,
            cost=money(total.cost_microusd),
        )

    @classmethod
    def of(cls, key: Any, row: dict[str, Any]) -> Self:
        return cls(
            key=str(key),
            calls=int(row["calls"]),
            input_tokens=int(row["input_tokens"]),
            output_tokens=int(row["output_tokens"]),
            cost=money(row["cost_microusd"]),
        )


class CostReport(BaseModel):
    start: date
    end: date
    group: str
    total: Money
    rows: list[SpendRow]


class CampaignSpend(BaseModel):
    total: Money
    by_model: list[SpendRow]
    by_node: list[SpendRow]


class CampaignReport(BaseModel):
    """A campaign's funnel, its funnel per A/B variant and its model spend, in one document."""

    campaign_id: int
    funnel: CampaignFunnel
    variants: list[VariantFunnel]
    spend: CampaignSpend


class RunningCampaign(BaseModel):
    id: int
    name: str
    status: str
    enrolled: int
    done: int
    progress: float
    spent: Money
    budget_cap: Money | None


class RecentImport(BaseModel):
    id: int
    file_name: str
    imported: int
    rejected: int
    created_at: UtcDateTime


class Overview(BaseModel):
    """The Overview page's figures."""

    leads: int
    campaigns_by_status: dict[str, int]
    messages_sent_today: int = Field(description="Since 00:00 UTC")
    leads_contacted: int
    leads_replied: int
    reply_rate: float | None = Field(description="Replied over contacted, in distinct leads; null: none")
    replies_waiting: int = Field(description="Replies no person has handled yet")
    spend_this_month: Money
    monthly_budget: Money | None
    running_campaigns: list[RunningCampaign]
    recent_imports: list[RecentImport]
