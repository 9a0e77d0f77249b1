"""One campaign's report: its funnel, the funnel per A/B variant, and its model spend.

The same figures as the Reports and Costs pages (core.analytics.funnel and costs), read for one
campaign: each a GROUP BY over that campaign's rows through its indexes, never the tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.analytics.costs import campaign_spend
from core.analytics.funnel import campaign_funnel
from core.db import Database
from core.permissions import Actor, Permission


@dataclass(frozen=True)
class CampaignReport:
    funnel: dict[str, Any]  # the campaign's row of funnel_by_campaign (core.analytics.funnel)
    variants: pd.DataFrame  # its rows of funnel_breakdown(..., "variant"): one per A/B variant
    spend: pd.DataFrame  # campaign_spend: one row per (model, node)

    @property
    def spent_microusd(self) -> int:
        return int(self.spend["cost_microusd"].sum())

    def spend_by(self, dimension: str) -> pd.DataFrame:
        """Calls, tokens and cost per model or node, the most expensive first."""
        sums = self.spend.groupby(dimension, as_index=False)[
            ["calls", "input_tokens", "output_tokens", "cost_microusd"]
        ].sum()
        return sums.sort_values(["cost_microusd", dimension], ascending=[False, True], ignore_index=True)


def campaign_report(db: Database, actor: Actor, campaign_id: int) -> CampaignReport:
    """The campaign's funnel and spend in one report (NotFound for a campaign of another tenant)."""
    actor.require(Permission.view_reports)
    actor.require(Permission.view_costs)
    funnel = campaign_funnel(db, actor, campaign_id)
    return CampaignReport(funnel.campaign, funnel.variants, campaign_spend(db, actor, campaign_id))
