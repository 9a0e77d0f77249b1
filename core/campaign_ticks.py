"""The runner's campaign ticks: start or resume campaigns whose time has come, complete finished ones.

System sessions: they work across tenants. A scheduled start passes the same pre-flight as a
person's start (core.preflight): the sender, the postal address, the audience and the budget
may have changed since it was scheduled. One that fails is not started but held (back to draft,
with the failed checks as its reason and in the audit log), where the Run tab shows the checklist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select

from core.audit import record_audit
from core.db import Database
from core.enrolment import start_in
from core.errors import NotFound
from core.lifecycle import Action, complete_finished_in, hold_scheduled_start, move_campaign
from core.models import Campaign, CampaignStatus
from core.permissions import system_actor
from core.preflight import Preflight, preflight


def _is_due(now: datetime) -> Any:
    return and_(Campaign.status.in_((CampaignStatus.scheduled.value, CampaignStatus.paused.value)),
                Campaign.scheduled_at.is_not(None), Campaign.scheduled_at <= now)


def start_due_campaigns(db: Database, *, now: datetime | None = None) -> list[int]:
    """Start scheduled campaigns whose time has come, and resume paused ones given a resume time.

    Returns the campaigns started or resumed; a scheduled one whose pre-flight fails is held
    instead (`hold_scheduled_start`) and not returned. The pre-flight reads outside the
    campaign's lock, as a person's start does; the lock then finds the campaign still due or
    leaves it (another worker took it, or a person changed it meanwhile).
    """
    now = now or datetime.now(UTC)
    with db.session(system=True, read_only=True) as session:
        due = session.execute(select(Campaign.id, Campaign.tenant_id, Campaign.status)
                              .where(_is_due(now)).order_by(Campaign.id)).all()
    started: list[int] = []
    for campaign_id, tenant_id, status in due:
        checks = None
        if status == CampaignStatus.scheduled.value:
            try:
                checks = preflight(db, system_actor(tenant_id), campaign_id)
            except NotFound:
                continue  # deleted since
        if _start_or_resume(db, campaign_id, checks, now):
            started.append(campaign_id)
    return started


def _start_or_resume(db: Database, campaign_id: int, checks: Preflight | None, now: datetime) -> bool:
    """Start (or hold) a scheduled campaign, resume a paused one; False when it is no longer due."""
    with db.session(system=True) as session, session.begin():
        campaign = session.scalar(
            select(Campaign).where(Campaign.id == campaign_id, _is_due(now))
            .with_for_update(skip_locked=True, key_share=True)
        )
        if campaign is None:
            return False
        details: dict[str, Any] = {"scheduled": True}
        if campaign.status == CampaignStatus.paused.value:
            move_campaign(campaign, Action.resume, now=now)
            action = "resume"
        elif checks is None:  # it was paused when read, and scheduled since: the next tick checks it
            return False
        elif checks.ready:
            details["enrolled"] = start_in(session, campaign, now)
            action = "start"
        else:
            failed = [c for c in checks.checks if c.stops_start]
            hold_scheduled_start(campaign, "; ".join(c.words for c in failed))
            details["failed_checks"] = {c.label: c.words for c in failed}
            action = "start_held"
        record_audit(session, tenant_id=campaign.tenant_id, user_id=None, action=action,
                     entity="campaign", entity_id=campaign.id, details=details)
        return action != "start_held"


def complete_finished_campaigns(db: Database, *, now: datetime | None = None) -> list[int]:
    """Mark running campaigns with no open lead left as completed."""
    now = now or datetime.now(UTC)
    with db.session(system=True) as session, session.begin():
        completed = complete_finished_in(session, now)
        for campaign_id, tenant_id in completed:
            record_audit(session, tenant_id=tenant_id, user_id=None, action="complete",
                         entity="campaign", entity_id=campaign_id)
    return [campaign_id for campaign_id, _ in completed]
