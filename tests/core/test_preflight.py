"""The pre-flight of a start: what cannot send is refused with words saying what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core.campaign_runs import schedule_campaign, start_campaign
from core.campaigns import create_campaign, get_campaign
from core.db import Database
from core.errors import Conflict
from core.models import CampaignLead, Tenant
from core.permissions import Actor
from core.pipeline.estimate import estimate_campaign_cost
from core.preflight import preflight
from tests.factories import insert_leads, make_actor, make_tenant


@pytest.fixture
def owner(db: Database) -> Actor:
    return make_actor(db, make_tenant(db))


def _postal_address(db: Database, tenant_id: int, address: str | None) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(postal_address=address))


def _enrolled(db: Database) -> int:
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(func.count(CampaignLead.id))) or 0


def _failed(db: Database, actor: Actor, campaign_id: int) -> dict[str, str]:
    return {c.label: c.words for c in preflight(db, actor, campaign_id).checks if not c.passed}


def test_an_email_campaign_without_a_postal_address_is_refused_with_what_to_do(
    db: Database, owner: Actor
) -> None:
    insert_leads(db, owner.tenant_id, 3)
    campaign = create_campaign(db, owner, name="Mail", channel="email")
    failed = _failed(db, owner, campaign.id)
    assert list(failed) == ["Postal address"]
    assert "Admin > Settings" in failed["Postal address"]
    with pytest.raises(Conflict) as refused:
        start_campaign(db, owner, campaign.id)
    assert str(refused.value) == f"campaign 'Mail' cannot start: {failed['Postal address']}"
    assert get_campaign(db, owner, campaign.id).status == "draft" and _enrolled(db) == 0
    _postal_address(db, owner.tenant_id, "1 Main St, Springfield")
    assert preflight(db, owner, campaign.id).ready
    assert start_campaign(db, owner, campaign.id).status == "running" and _enrolled(db) == 3


def test_an_empty_audience_is_refused(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 2, industry="Retail")
    campaign = create_campaign(db, owner, name="Banks", channel="sms", audience={"industries": ["Banking"]})
    failed = _failed(db, owner, campaign.id)
    assert list(failed) == ["Audience"] and failed["Audience"].startswith("the audience is empty")
    with pytest.raises(Conflict, match="cannot start: the audience is empty"):
        start_campaign(db, owner, campaign.id)
    with pytest.raises(Conflict, match="cannot be scheduled: the audience is empty"):
        schedule_campaign(db, owner, campaign.id, datetime.now(UTC) + timedelta(hours=1))


def test_a_cap_that_does_not_cover_one_lead_is_refused(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 4)
    campaign = create_campaign(db, owner, name="Tight", channel="sms", budget_cap_microusd=100)
    per_lead = estimate_campaign_cost(db, db.settings, owner, campaign.id).cost_per_lead_microusd
    assert per_lead > 100
    failed = _failed(db, owner, campaign.id)
    assert list(failed) == ["Budget cap"]
    assert failed["Budget cap"].startswith("$0.0001 is left of the $0.0001 budget cap, less than one lead")
    with pytest.raises(Conflict, match="less than one lead costs"):
        start_campaign(db, owner, campaign.id)


def test_an_estimate_far_above_the_cap_warns_but_may_start(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 10)
    campaign = create_campaign(db, owner, name="Big", channel="sms")
    per_lead = estimate_campaign_cost(db, db.settings, owner, campaign.id).cost_per_lead_microusd
    campaign = create_campaign(db, owner, name="Capped", channel="sms", budget_cap_microusd=per_lead * 2)
    checks = preflight(db, owner, campaign.id)
    [budget] = [c for c in checks.checks if c.label == "Budget cap"]
    assert not budget.passed and not budget.blocking and checks.ready
    assert "5.0 times" in budget.words and "after about 2 leads of 10" in budget.words
    assert start_campaign(db, owner, campaign.id).status == "running"


def test_an_sms_campaign_in_the_outbox_needs_no_sender_id(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 1)
    campaign = create_campaign(db, owner, name="Texts", channel="sms")
    checks = {c.label: c for c in preflight(db, owner, campaign.id).checks}
    assert list(checks) == ["Sender", "Audience", "Budget cap"]
    assert checks["Sender"].passed and "outbox" in checks["Sender"].words
    assert all(c.passed for c in checks.values())
