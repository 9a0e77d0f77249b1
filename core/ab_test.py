"""A campaign's A/B test: which variant gets more replies, whether that is significant, keep the winner.

The reply rate of a variant is its replied leads over its leads whose first touch went out (the
funnel's "sent" and "replied", core.analytics.funnel). The leader is compared with the runner-up
by Fisher's exact test (scipy), two-sided, at `ALPHA`. When the difference is not significant,
the leads needed per variant are estimated with the usual two-proportion formula at 80% power,
taking the observed rates as the true ones: "need about N more leads per variant".

Keeping the winner moves the campaign's leads that have not been drafted or sent yet (first
touch, pending or deferred) to the winning variant and gives the others weight 0, so no lead
enrolled later is dealt to them. Drafts already written (awaiting approval, approved) and sent
messages stay as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import update

from core.analytics.funnel import funnel_breakdown
from core.audit import record_audit
from core.campaign_shape import Variant
from core.campaigns import get_campaign, locked_campaign
from core.db import Database
from core.errors import Conflict, ValidationError
from core.lifecycle import enrolments_in_lock_order, refusal
from core.models import CampaignLead, CampaignStatus, EnrolmentStatus
from core.permissions import Actor, Permission
from core.pipeline.drafting import variant_names

ALPHA = 0.05
POWER = 0.8
# Leads not yet drafted or sent: moving them to another variant changes nothing already written.
MOVABLE_LEAD_STATUSES = (EnrolmentStatus.pending.value, EnrolmentStatus.deferred.value)
KEEPABLE_CAMPAIGN_STATUSES = tuple(s.value for s in (
    CampaignStatus.draft, CampaignStatus.scheduled, CampaignStatus.running, CampaignStatus.paused))


@dataclass(frozen=True)
class VariantFigures:
    name: str
    enrolled: int
    sent: int
    replied: int

    @property
    def reply_rate(self) -> float:
        return self.replied / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class ABResult:
    """The comparison of a campaign's variants, and a sentence that says what it means."""

    variants: list[VariantFigures]
    verdict: str
    kept: str | None = None  # the variant kept by "keep the winner", if any
    leader: str | None = None
    runner_up: str | None = None
    p_value: float | None = None
    significant: bool = False
    more_leads_per_variant: int | None = None  # when not significant and a difference was seen


def leads_per_variant(p1: float, p2: float, *, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Leads per variant for a two-sided two-proportion test to tell p1 from p2; None if equal."""
    from scipy.stats import norm  # scipy takes a while to import: only when a result is asked for

    if p1 == p2:
        return None
    z_alpha, z_power = norm.ppf(1 - alpha / 2), norm.ppf(power)
    mean = (p1 + p2) / 2
    spread = (z_alpha * math.sqrt(2 * mean * (1 - mean))
              + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
    return math.ceil(spread**2 / (p1 - p2) ** 2)


def _percent(rate: float) -> str:
    return f"{rate:.1%}"


def compare(variants: list[VariantFigures], kept: str | None = None) -> ABResult:
    """The verdict on figures already counted (see `ab_result`)."""
    from scipy.stats import fisher_exact

    def result(verdict: str, **fields: Any) -> ABResult:
        return ABResult(variants=variants, verdict=verdict, kept=kept, **fields)

    if len(variants) < 2:
        return result("This campaign has one variant: there is nothing to compare.")
    ranked = sorted(variants, key=lambda v: (-v.reply_rate, -v.sent, v.name))
    leader, runner_up = ranked[0], ranked[1]
    if not leader.sent or not runner_up.sent:
        return result("Not yet significant: no first message of "
                      f"variant {(runner_up if leader.sent else leader).name} has gone out yet.")
    table = [[leader.replied, leader.sent - leader.replied],
             [runner_up.replied, runner_up.sent - runner_up.replied]]
    p_value = float(fisher_exact(table, alternative="two-sided").pvalue)
    rates = (f"{_percent(leader.reply_rate)} of variant {leader.name}'s leads replied against "
             f"{_percent(runner_up.reply_rate)} of variant {runner_up.name}'s")
    if leader.reply_rate == runner_up.reply_rate:
        return result(f"Not yet significant: both variants reply at {_percent(leader.reply_rate)}; "
                      "there is no difference to test yet.",
                      p_value=p_value)
    if p_value < ALPHA:
        return result(f"Variant {leader.name} wins: {rates} (p = {p_value:.3f}, Fisher's exact test).",
                      leader=leader.name, runner_up=runner_up.name, p_value=p_value, significant=True)
    needed = leads_per_variant(leader.reply_rate, runner_up.reply_rate)
    more = max(1, (needed or 0) - min(leader.sent, runner_up.sent))
    return result(f"Not yet significant (p = {p_value:.2f}): {rates}; need about {more:,} more "
                  "leads per variant.",
                  leader=leader.name, runner_up=runner_up.name, p_value=p_value,
                  more_leads_per_variant=more)


def _kept_variant(variants: tuple[Variant, ...]) -> str | None:
    return next((v.name for v in variants if v.weight == 100), None)


def ab_result(db: Database, actor: Actor, campaign_id: int) -> ABResult:
    """The campaign's variants, each with its leads, first touches sent and replies, and the verdict."""
    campaign = get_campaign(db, actor, campaign_id)
    frame = funnel_breakdown(db, actor, campaign_id, "variant")
    counted = {str(row.variant): row for row in frame.itertuples()}
    variants = [
        VariantFigures(name, int(getattr(counted.get(name), "enrolled", 0)),
                       int(getattr(counted.get(name), "sent", 0)),
                       int(getattr(counted.get(name), "replied", 0)))
        for name in variant_names(campaign.variants) or sorted(counted)
    ]
    return compare(variants, _kept_variant(campaign.variants))


def keep_winner(db: Database, actor: Actor, campaign_id: int, winner: str) -> int:
    """Move the leads not yet drafted or sent to `winner`, weight it 100%; returns how many moved."""
    actor.require(Permission.run_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        names = variant_names(campaign.variants)
        if winner not in names:
            raise ValidationError(f"campaign '{campaign.name}' has no variant '{winner}'"
                                  + (f": it has {', '.join(names)}" if names else ""))
        if len(names) < 2:
            raise Conflict(f"campaign '{campaign.name}' has one variant: there is no winner to keep")
        if campaign.status not in KEEPABLE_CAMPAIGN_STATUSES:
            raise refusal(campaign, "changed (it sends nothing more)")
        result = session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(enrolments_in_lock_order(
                CampaignLead.campaign_id == campaign_id, CampaignLead.variant != winner,
                CampaignLead.step == 0, CampaignLead.status.in_(MOVABLE_LEAD_STATUSES))))
            .values(variant=winner)
            .execution_options(synchronize_session=False)
        )
        moved = int(getattr(result, "rowcount", 0) or 0)
        campaign.variants = tuple(
            replace(v, weight=100 if v.name == winner else 0) for v in campaign.variants
        )
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="keep_winner",
                     entity="campaign", entity_id=campaign.id,
                     details={"winner": winner, "leads_moved": moved})
        return moved
