"""The audience's size and cost before a start: counted when small, estimated from a sample when
large (the same sample for the same seed), and the margin it states holds."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from core.campaigns import create_campaign
from core.db import Database
from core.models import Lead, Suppression
from core.permissions import Actor
from core.pipeline import estimate
from core.pipeline.estimate import (
    AudienceSize,
    describe_audience_size,
    describe_cost,
    describe_sample,
    estimate_audience_size,
    estimate_campaign_cost,
)
from tests.conftest import make_settings
from tests.factories import insert_leads, make_actor, make_tenant

LEADS = 1_000


@pytest.fixture
def small_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample's sizes scaled down with the tenant: 20 blocks of 5 ids out of 1,000 leads,
    and audiences above 100 leads estimated."""
    monkeypatch.setattr(estimate, "SAMPLE_BLOCKS", 20)
    monkeypatch.setattr(estimate, "BLOCK_IDS", 5)
    monkeypatch.setattr(estimate, "EXACT_LEADS", 100)
    monkeypatch.setattr(estimate, "MAX_SAMPLED_MARGIN", 0.5)
    monkeypatch.setattr(estimate, "PRICED_LEADS", 10)


@pytest.fixture
def owner(db: Database) -> Actor:
    """A tenant of 1,000 leads; every fourth is in Germany."""
    tenant_id = make_tenant(db)
    ids = insert_leads(db, tenant_id, LEADS)
    with db.session(tenant_id=tenant_id) as session, session.begin():
        session.execute(update(Lead).where(Lead.id.in_(ids[::4])).values(country="DE"))
    return make_actor(db, tenant_id)


def test_a_small_audience_is_counted_exactly(db: Database, owner: Actor) -> None:
    # No sample: the tenant's ids fit in one (500 blocks of 10 ids).
    with db.session(tenant_id=owner.tenant_id) as session, session.begin():
        first, second = session.scalars(select(Lead).order_by(Lead.id).limit(2))
        session.add(Suppression(channel="sms", address=first.phone, reason="stop"))
        second.opted_out_at = second.created_at
    size = estimate_audience_size(db, owner, "sms", {})
    assert size == AudienceSize(leads=LEADS - 2, margin=0.0, sample_leads=0)
    assert describe_audience_size(size) == "998 leads" and describe_sample(size) is None
    assert estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}).leads == LEADS // 4 - 1


@pytest.mark.usefixtures("small_sample")
def test_a_large_audience_is_estimated_from_a_sample_the_same_for_the_same_seed(
    db: Database, owner: Actor
) -> None:
    first = estimate_audience_size(db, owner, "sms", {}, seed=7)
    assert first == estimate_audience_size(db, owner, "sms", {}, seed=7)
    # Every lead is in the audience: the sample's 100 ids all match, and the estimate is exact.
    assert (first.leads, first.sample_leads, first.margin) == (LEADS, 100, 0.0)
    assert not first.exact
    germany = estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}, seed=7)
    assert germany == estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}, seed=7)
    assert 0 < germany.sample_leads < 100 and 0 < germany.margin <= 0.5
    assert germany.leads == germany.sample_leads * 10  # 100 ids of 1,000 looked at
    assert describe_audience_size(germany) == f"about {germany.leads:,} leads"
    assert describe_sample(germany) == (
        f"± {germany.margin * 100:.0f}%, estimated from a sample of {germany.sample_leads} leads")
    # Without a seed, the audience itself is the seed: the same figures on every page load.
    assert estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}) == (
        estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}))


@pytest.mark.usefixtures("small_sample")
def test_the_stated_margin_holds_for_most_samples(db: Database, owner: Actor) -> None:
    truth = LEADS // 4
    sizes = [estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}, seed=s) for s in range(40)]
    assert len({size.leads for size in sizes}) > 1  # different seeds, different samples
    within = [abs(size.leads - truth) <= size.margin * size.leads for size in sizes]
    # A 95% margin: about 38 of 40 hold; 34 leaves room for chance without hiding a wrong formula.
    assert sum(within) >= 34


@pytest.mark.usefixtures("small_sample")
def test_a_sample_that_finds_a_small_audience_is_followed_by_an_exact_count(
    db: Database, owner: Actor
) -> None:
    with db.session(tenant_id=owner.tenant_id) as session, session.begin():
        session.execute(update(Lead).where(Lead.id % 50 == 0).values(industry="Rare"))
    size = estimate_audience_size(db, owner, "sms", {"industries": ["rare"]}, seed=3)
    assert size == AudienceSize(leads=LEADS // 50, margin=0.0, sample_leads=0)


def _campaign(db: Database, actor: Actor, **fields: Any) -> int:
    return create_campaign(db, actor, name="Spring", channel="sms", **fields).id


@pytest.mark.usefixtures("small_sample")
def test_a_sampled_cost_states_its_margin_and_sample(db: Database, owner: Actor) -> None:
    campaign_id = _campaign(db, owner, audience={"countries": ["DE"]})
    settings = make_settings(str(db.engine.url.render_as_string(hide_password=False)))
    cost = estimate_campaign_cost(db, settings, owner, campaign_id, seed=7)
    size = estimate_audience_size(db, owner, "sms", {"countries": ["DE"]}, seed=7)
    assert (cost.leads, cost.sample_leads) == (size.leads, size.sample_leads)
    assert cost.priced_leads == 10 and cost.total_microusd == cost.cost_per_lead_microusd * cost.leads
    assert cost.margin >= size.margin > 0
    assert describe_cost(cost).startswith("about $") and describe_cost(cost).endswith(
        f"%, estimated from a sample of {size.sample_leads} leads")


def test_a_small_audience_priced_lead_by_lead_is_exact(db: Database, owner: Actor) -> None:
    tenant_id = make_tenant(db, "Small")
    insert_leads(db, tenant_id, 3)
    actor = make_actor(db, tenant_id)
    settings = make_settings(str(db.engine.url.render_as_string(hide_password=False)))
    cost = estimate_campaign_cost(db, settings, actor, _campaign(db, actor))
    assert (cost.leads, cost.margin, cost.sample_leads, cost.priced_leads) == (3, 0.0, 0, 3)
    assert describe_cost(cost) == f"${cost.total_microusd / 1_000_000:,.4f} for 3 leads"
