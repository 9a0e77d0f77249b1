"""Claiming due enrolments with a lease, fairly between tenants and campaigns, and giving leases back.

A claim is one statement per campaign: `UPDATE ... WHERE id IN (SELECT ... LIMIT k FOR UPDATE
SKIP LOCKED) RETURNING id` on PostgreSQL, so concurrent workers skip each other's rows instead of
waiting on them; on SQLite the same UPDATE ... RETURNING runs in a transaction that took the write
lock at BEGIN, so it is atomic by construction. The campaign must still be `running` in the same
statement, which is how a pause stops new claims at once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update

from core.db import Database
from core.lifecycle import claimed_values, due_condition, enrolments_in_lock_order
from core.models import Campaign, CampaignLead, CampaignStatus, EnrolmentStatus

# The share of a lease that rate-limited sends may fill: a campaign sending 2 per minute with a
# 120 s lease gets at most 2 leads in flight, so none waits for its send slot past its lease.
SEND_RATE_LEASE_SHARE = 0.5


@dataclass(frozen=True)
class RunnableCampaign:
    id: int
    tenant_id: int
    in_flight_cap: int | None


def runnable_campaigns(db: Database, *, now: datetime, lease_seconds: float) -> list[RunnableCampaign]:
    """Running campaigns with at least one lead due now, with their in-flight headroom."""
    has_due = exists().where(CampaignLead.campaign_id == Campaign.id, due_condition(now))
    with db.session(system=True, read_only=True) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.tenant_id, Campaign.sends_per_minute)
            .where(Campaign.status == CampaignStatus.running.value, has_due)
            .order_by(Campaign.id)
        ).all()
        limited = [r.id for r in rows if r.sends_per_minute]
        in_flight: dict[int, int] = {}
        if limited:
            in_flight = dict(
                session.execute(
                    select(CampaignLead.campaign_id, func.count(CampaignLead.id))
                    .where(CampaignLead.campaign_id.in_(limited),
                           CampaignLead.status == EnrolmentStatus.in_progress.value)
                    .group_by(CampaignLead.campaign_id)
                ).all()
            )
    campaigns = []
    for row in rows:
        cap = None
        if row.sends_per_minute:
            allowed = max(1, math.floor(row.sends_per_minute * lease_seconds / 60
                                        * SEND_RATE_LEASE_SHARE))
            cap = max(0, allowed - in_flight.get(row.id, 0))
        campaigns.append(RunnableCampaign(row.id, row.tenant_id, cap))
    return campaigns


def share_slots(campaigns: list[RunnableCampaign], slots: int, rotation: int = 0) -> dict[int, int]:
    """Deal `slots` one at a time: round-robin over tenants, then over each tenant's campaigns.

    A tenant with ten campaigns gets no more than a tenant with one; `rotation` moves the start
    so that with fewer slots than tenants every tenant still gets its turn over successive claims.
    """
    by_tenant: dict[int, list[RunnableCampaign]] = defaultdict(list)
    for campaign in campaigns:
        by_tenant[campaign.tenant_id].append(campaign)
    tenants = sorted(by_tenant)
    if not tenants:
        return {}
    start = rotation % len(tenants)
    tenants = tenants[start:] + tenants[:start]
    shares: dict[int, int] = {}
    next_campaign = {t: rotation % len(by_tenant[t]) for t in tenants}
    while slots > 0:
        dealt = False
        for tenant in tenants:
            if slots == 0:
                break
            own = by_tenant[tenant]
            for _ in range(len(own)):
                campaign = own[next_campaign[tenant] % len(own)]
                next_campaign[tenant] += 1
                share = shares.get(campaign.id, 0)
                if campaign.in_flight_cap is None or share < campaign.in_flight_cap:
                    shares[campaign.id] = share + 1
                    slots -= 1
                    dealt = True
                    break
        if not dealt:
            break  # every campaign is at its in-flight cap
    return shares


def claim_campaign_enrolments(
    db: Database, *, campaign_id: int, limit: int, worker_id: str, now: datetime,
    lease_seconds: float,
) -> list[int]:
    """Claim up to `limit` due enrolments of one running campaign; returns their ids."""
    if limit <= 0:
        return []
    due = (
        select(CampaignLead.id)
        .where(CampaignLead.campaign_id == campaign_id, due_condition(now))
        .order_by(CampaignLead.next_action_at, CampaignLead.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    campaign_running = exists().where(
        Campaign.id == campaign_id, Campaign.status == CampaignStatus.running.value
    )
    statement = (
        update(CampaignLead)
        .where(CampaignLead.id.in_(due.scalar_subquery()), campaign_running)
        .values(**claimed_values(worker_id, now + timedelta(seconds=lease_seconds), now))
        .returning(CampaignLead.id)
        .execution_options(synchronize_session=False)
    )
    with db.session(system=True) as session, session.begin():
        return list(session.scalars(statement))


def claim_due_enrolments(
    db: Database, *, worker_id: str, limit: int, now: datetime, lease_seconds: float,
    rotation: int = 0,
) -> list[int]:
    """Claim up to `limit` due enrolments across running campaigns, fairly; returns their ids."""
    claimed: list[int] = []
    campaigns = runnable_campaigns(db, now=now, lease_seconds=lease_seconds)
    # A campaign with fewer due leads than its share leaves slots over: they are dealt again
    # among the campaigns that filled theirs. Each round claims something or drops a campaign.
    while campaigns and len(claimed) < limit:
        shares = share_slots(campaigns, limit - len(claimed), rotation)
        if not shares:
            break  # every campaign is at its in-flight cap
        remaining = []
        for campaign in campaigns:
            share = shares.get(campaign.id, 0)
            if share == 0:
                remaining.append(campaign)
                continue
            ids = claim_campaign_enrolments(db, campaign_id=campaign.id, limit=share,
                                       worker_id=worker_id, now=now, lease_seconds=lease_seconds)
            claimed.extend(ids)
            if len(ids) == share:
                cap = None if campaign.in_flight_cap is None else campaign.in_flight_cap - share
                remaining.append(RunnableCampaign(campaign.id, campaign.tenant_id, cap))
        campaigns = remaining
    return claimed


def renew_leases(
    db: Database, *, worker_id: str, enrolment_ids: list[int], now: datetime, lease_seconds: float
) -> int:
    """Extend the leases this worker still holds, so only a dead worker's leases expire."""
    if not enrolment_ids:
        return 0
    with db.session(system=True) as session, session.begin():
        result = session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(enrolments_in_lock_order(
                CampaignLead.id.in_(enrolment_ids), CampaignLead.lease_owner == worker_id,
                CampaignLead.status == EnrolmentStatus.in_progress.value)))
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
