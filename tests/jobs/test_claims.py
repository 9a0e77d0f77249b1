"""Claiming due leads: atomic under concurrency, fair between tenants and campaigns, stopped by a pause."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from core.campaign_runs import pause_campaign, start_campaign
from core.campaigns import update_campaign
from core.db import Database
from core.models import CampaignLead
from jobs.claims import (
    RunnableCampaign,
    claim_due_enrolments,
    renew_leases,
    runnable_campaigns,
    share_slots,
)
from tests.jobs.conftest import CampaignMaker, lead_statuses

LEASE = 60.0


def _claim(db: Database, limit: int, worker: str = "w1", now: datetime | None = None,
           rotation: int = 0) -> list[int]:
    return claim_due_enrolments(db, worker_id=worker, limit=limit, now=now or datetime.now(UTC),
                           lease_seconds=LEASE, rotation=rotation)


@pytest.mark.parametrize(("campaigns", "slots", "expected"), [
    # (campaign id, tenant id, in-flight cap)
    ([(1, 1, None)], 5, {1: 5}),
    ([(1, 1, None), (2, 2, None)], 6, {1: 3, 2: 3}),
    # A tenant with three campaigns gets no more than a tenant with one.
    ([(1, 1, None), (2, 1, None), (3, 1, None), (4, 2, None)], 8, {1: 2, 2: 1, 3: 1, 4: 4}),
    # A campaign at its in-flight cap gives its share to the others.
    ([(1, 1, 1), (2, 2, None)], 6, {1: 1, 2: 5}),
    ([(1, 1, 0), (2, 2, 0)], 6, {}),
    ([], 4, {}),
])
def test_share_slots(campaigns: list[tuple[int, int, int | None]], slots: int,
                     expected: dict[int, int]) -> None:
    runnable = [RunnableCampaign(*c) for c in campaigns]
    assert share_slots(runnable, slots) == expected


def test_share_slots_rotates_so_every_tenant_gets_a_turn() -> None:
    runnable = [RunnableCampaign(n, n, None) for n in range(1, 4)]
    winners = [next(iter(share_slots(runnable, 1, rotation))) for rotation in range(3)]
    assert sorted(winners) == [1, 2, 3]


def test_a_claim_leases_the_due_leads(runner_db: Database, running_campaign: CampaignMaker) -> None:
    campaign = running_campaign(5)
    now = datetime.now(UTC)
    with runner_db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.lead_id == campaign.lead_ids[0])
                        .values(next_action_at=now + timedelta(hours=1)))
    claimed = _claim(runner_db, 10, now=now)
    assert len(claimed) == 4  # the lead due in an hour is not due now
    with runner_db.session(system=True, read_only=True) as session:
        rows = session.scalars(select(CampaignLead).where(CampaignLead.id.in_(claimed))).all()
    assert {(r.status, r.lease_owner, r.attempts) for r in rows} == {("in_progress", "w1", 1)}
    assert all(r.lease_expires_at == now + timedelta(seconds=LEASE) for r in rows)


def test_concurrent_claims_never_claim_a_lead_twice(
    runner_db: Database, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(300)
    claims: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        mine: list[int] = []
        while batch := _claim(runner_db, 7, worker=name):
            mine.extend(batch)
        claims[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [lead for mine in claims.values() for lead in mine]
    assert len(everything) == len(set(everything)) == 300
    assert sum(1 for mine in claims.values() if mine) > 1  # the workers really competed
    assert lead_statuses(runner_db, campaign.campaign_id) == {"in_progress": 300}


def test_claims_are_fair_between_tenants(runner_db: Database, running_campaign: CampaignMaker) -> None:
    first = running_campaign(20)
    busy = [first, running_campaign(20, same_tenant_as=first), running_campaign(20, same_tenant_as=first)]
    quiet = running_campaign(20)
    _claim(runner_db, 12)
    assert lead_statuses(runner_db, quiet.campaign_id)["in_progress"] == 6
    busy_claimed = sum(lead_statuses(runner_db, c.campaign_id).get("in_progress", 0) for c in busy)
    assert busy_claimed == 6


def test_a_campaign_with_few_due_leads_leaves_its_slots_to_others(
    runner_db: Database, running_campaign: CampaignMaker
) -> None:
    small, large = running_campaign(2), running_campaign(30)
    assert len(_claim(runner_db, 20)) == 20
    assert lead_statuses(runner_db, small.campaign_id) == {"in_progress": 2}
    assert lead_statuses(runner_db, large.campaign_id)["in_progress"] == 18


def test_a_paused_campaign_gives_no_more_leads(
    runner_db: Database, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(10)
    assert len(_claim(runner_db, 3)) == 3
    pause_campaign(runner_db, campaign.actor, campaign.campaign_id)
    assert _claim(runner_db, 10) == []
    assert runnable_campaigns(runner_db, now=datetime.now(UTC), lease_seconds=LEASE) == []


def test_a_slow_send_rate_limits_the_leads_in_flight(
    runner_db: Database, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(50, start=False)
    update_campaign(runner_db, campaign.actor, campaign.campaign_id, sends_per_minute=6)
    start_campaign(runner_db, campaign.actor, campaign.campaign_id)
    # Six a minute with a 60 s lease: at most three in flight, so none waits past its lease.
    assert len(_claim(runner_db, 20)) == 3
    assert _claim(runner_db, 20) == []


def test_renewal_extends_only_this_workers_leases(
    runner_db: Database, running_campaign: CampaignMaker
) -> None:
    running_campaign(4)
    now = datetime.now(UTC)
    mine = _claim(runner_db, 2, worker="me", now=now)
    theirs = _claim(runner_db, 2, worker="them", now=now)
    later = now + timedelta(seconds=30)
    assert renew_leases(runner_db, worker_id="me", enrolment_ids=mine + theirs, now=later,
                        lease_seconds=LEASE) == 2
    with runner_db.session(system=True, read_only=True) as session:
        expiry = dict(session.execute(select(CampaignLead.id, CampaignLead.lease_expires_at)).all())
    assert {expiry[i] for i in mine} == {later + timedelta(seconds=LEASE)}
    assert {expiry[i] for i in theirs} == {now + timedelta(seconds=LEASE)}
