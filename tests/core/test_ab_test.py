"""The A/B result with its significance, and keeping the winner."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, select, type_coerce, update

from core.ab_test import VariantFigures, ab_result, compare, keep_winner, leads_per_variant
from core.campaign_housekeeping import clone_campaign
from core.campaign_shape import Variant
from core.campaigns import create_campaign, get_campaign
from core.db import Database
from core.errors import Conflict, PermissionDenied, ValidationError
from core.models import AuditLog, Campaign, CampaignLead, Role
from core.permissions import Actor
from core.pipeline.drafting import assign_variant
from tests.factories import enrol, make_actor, make_lead, make_tenant


def test_leads_needed_per_variant_by_the_two_proportion_formula() -> None:
    # The textbook case: 10% against 20% at alpha 0.05 and 80% power needs 199 per group.
    assert leads_per_variant(0.10, 0.20) == 199
    assert leads_per_variant(0.3, 0.3) is None


def test_a_clear_difference_is_significant() -> None:
    result = compare([VariantFigures("A", 100, 100, 5), VariantFigures("B", 100, 100, 25)])
    assert (result.leader, result.runner_up, result.significant) == ("B", "A", True)
    assert result.p_value is not None and result.p_value < 0.001
    assert result.verdict.startswith("Variant B wins: 25.0% of variant B's leads replied against 5.0% "
                                     "of variant A's (p = 0.000, Fisher's exact test)")
    assert result.more_leads_per_variant is None


def test_a_small_difference_says_how_many_more_leads_it_needs() -> None:
    result = compare([VariantFigures("A", 60, 50, 5), VariantFigures("B", 60, 50, 10)])
    assert not result.significant and result.leader == "B"
    assert result.more_leads_per_variant == 199 - 50
    assert result.verdict.endswith("need about 149 more leads per variant.")
    assert result.verdict.startswith("Not yet significant (p = 0.26)")


@pytest.mark.parametrize(("figures", "verdict"), [
    ([VariantFigures("A", 5, 5, 1)], "This campaign has one variant: there is nothing to compare."),
    ([VariantFigures("A", 5, 5, 1), VariantFigures("B", 5, 0, 0)],
     "Not yet significant: no first message of variant B has gone out yet."),
    ([VariantFigures("A", 5, 40, 4), VariantFigures("B", 5, 40, 4)],
     "Not yet significant: both variants reply at 10.0%; there is no difference to test yet."),
])
def test_nothing_to_conclude_says_why(figures: list[VariantFigures], verdict: str) -> None:
    result = compare(figures)
    assert result.verdict == verdict and not result.significant


def _ab_campaign(db: Database) -> tuple[int, int, Actor]:
    tenant = make_tenant(db)
    manager = make_actor(db, tenant, Role.manager)
    campaign = create_campaign(db, manager, name="A/B", channel="sms",
                               variants=[{"name": "A", "prompt": "brief"},
                                         {"name": "B", "prompt": "question"}])
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(update(Campaign).values(status="running"))
    return tenant, campaign.id, manager


def test_the_result_counts_sent_first_touches_and_replies_per_variant(db: Database) -> None:
    tenant, campaign, manager = _ab_campaign(db)
    replied = datetime.now(UTC)
    for n in range(30):
        enrol(db, tenant, campaign, make_lead(db, tenant), variant="A", first_touch="sent",
              replied_at=replied if n < 2 else None)
        enrol(db, tenant, campaign, make_lead(db, tenant), variant="B", first_touch="delivered",
              replied_at=replied if n < 12 else None)
    enrol(db, tenant, campaign, make_lead(db, tenant), variant="B", status="pending")
    result = ab_result(db, manager, campaign)
    assert [(v.name, v.enrolled, v.sent, v.replied) for v in result.variants] == [
        ("A", 30, 30, 2), ("B", 31, 30, 12)]
    assert result.significant and result.leader == "B" and result.kept is None


def test_keep_the_winner_moves_the_leads_not_yet_drafted(db: Database) -> None:
    tenant, campaign, manager = _ab_campaign(db)
    moved_ids = [enrol(db, tenant, campaign, make_lead(db, tenant), variant="A", status=s)
                 for s in ("pending", "deferred")]
    kept_ids = [enrol(db, tenant, campaign, make_lead(db, tenant), variant="A", status=s)
                for s in ("awaiting_approval", "sent", "in_progress")]
    follow_up = enrol(db, tenant, campaign, make_lead(db, tenant), variant="A", status="pending")
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id == follow_up).values(step=1))
    assert keep_winner(db, manager, campaign, "B") == 2
    with db.session(tenant_id=tenant, read_only=True) as session:
        variants = dict(session.execute(select(CampaignLead.id, CampaignLead.variant)).all())
        audit = session.execute(select(AuditLog.action, AuditLog.details)
                                .where(AuditLog.action == "keep_winner")).all()
    assert [variants[i] for i in moved_ids] == ["B", "B"]
    assert [variants[i] for i in (*kept_ids, follow_up)] == ["A", "A", "A", "A"]
    assert audit == [("keep_winner", {"winner": "B", "leads_moved": 2})]
    saved = get_campaign(db, manager, campaign)
    assert saved.variants == (Variant("A", "brief", weight=0), Variant("B", "question", weight=100))
    with db.session(tenant_id=tenant, read_only=True) as session:
        stored = session.scalar(select(type_coerce(Campaign.variants, JSON)).where(Campaign.id == campaign))
    assert stored == [{"name": "A", "prompt": "brief", "weight": 0},
                      {"name": "B", "prompt": "question", "weight": 100}]
    # Every lead dealt from now on gets the winner, and the result says which was kept.
    assert {assign_variant(lead_id, saved.variants) for lead_id in range(1, 9)} == {"B"}
    assert ab_result(db, manager, campaign).kept == "B"
    # A copy starts its A/B test afresh.
    assert clone_campaign(db, manager, campaign).variants == (Variant("A", "brief"), Variant("B", "question"))


def test_keep_the_winner_refuses_what_it_cannot_do(db: Database) -> None:
    tenant, campaign, manager = _ab_campaign(db)
    with pytest.raises(ValidationError, match="has no variant 'C': it has A, B"):
        keep_winner(db, manager, campaign, "C")
    with pytest.raises(PermissionDenied):
        keep_winner(db, make_actor(db, tenant, Role.analyst), campaign, "B")
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(update(Campaign).values(status="completed"))
    with pytest.raises(Conflict, match="is completed: it cannot be changed"):
        keep_winner(db, manager, campaign, "B")
