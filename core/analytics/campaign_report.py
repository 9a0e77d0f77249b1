"""One campaign's report: its funnel, the funnel per A/B variant, and its model spend.

The same figures as the Reports and Costs pages (core.analytics.funnel and costs), read for one
campaign: each a GROUP BY over that campaign's rows through its indexes, never the tenant's, and
summed in plain Python (a report read often by machines has no use for a DataFrame's set-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.analytics.costs import SpendLine, campaign_spend_in
from core.analytics.funnel import campaign_funnel_in
from core.db import Database
from core.permissions import Actor, Permission


@dataclass(frozen=True)
class SpendTotal:
    key: str  # the model or the node
    calls: int
    input_tokens: int
    output_tokens: int
    cost_microusd: int


@dataclass(frozen=True)
class CampaignReport:
    funnel: dict[str, Any]  # the campaign's row of funnel_by_campaign (core.analytics.funnel)
    variants: list[dict[str, Any]]  # its rows of funnel_breakdown(..., "variant"): one per variant
    spend: list[SpendLine]  # campaign_spend_in: one line per (model, node)

    @property
    def spent_microusd(self) -> int:
        return sum(line.cost_microusd for line in self.spend)

    def spend_by(self, dimension: Literal["model", "node"]) -> list[SpendTotal]:
        """Calls, tokens and cost per model or node, the most expensive first."""
        sums: dict[str, list[int]] = {}
        for line in self.spend:
            total = sums.setdefault(getattr(line, dimension), [0, 0, 0, 0])
            for index, value in enumerate(
                (line.calls, line.input_tokens, line.output_tokens, line.cost_microusd)
            ):
                total[index] += value
        totals = [SpendTotal(key, *values) for key, values in sums.items()]
        return sorted(totals, key=lambda t: (-t.cost_microusd, t.key))


def campaign_report(db: Database, actor: Actor, campaign_id: int) -> CampaignReport:
    """The campaign's funnel and spend in one report, read in one session (NotFound for a
    campaign of another tenant)."""
    actor.require(Permission.view_reports)
    actor.require(Permission.view_costs)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        funnel = campaign_funnel_in(session, campaign_id)  # NotFound first
        spend = campaign_spend_in(session, campaign_id)
    return CampaignReport(funnel.campaign, funnel.variants, spend)
