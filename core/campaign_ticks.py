"""The runner's campaign ticks: start or resume campaigns whose time has come, complete finished ones.

System sessions: they work across tenants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.audit import record_audit
from core.db import Database
from core.enrolment import start_in
from core.lifecycle import Action, complete_finished_in, move_campaign
from core.models import Campaign, CampaignStatus


def start_due_campaigns(db: Database, *, now: datetime | None = None) -> list[int]:
    """Start scheduled campaigns whose time has come, and resume paused ones given a resume time."""
    now = now or datetime.now(UTC)
    started: list[int] = []
    with db.session(system=True) as session, session.begin():
        due = session.scalars(
            select(Campaign)
            .where(Campaign.status.in_((CampaignStatus.scheduled.value,
                                        CampaignStatus.paused.value)),
                   Campaign.scheduled_at.is_not(None), Campaign.scheduled_at <= now)
            .with_for_update(skip_locked=True, key_share=True)
        ).all()
        for campaign in due:
            if campaign.status == CampaignStatus.scheduled.value:
                enrolled = start_in(session, campaign, now)
                details: dict[str, Any] = {"enrolled": enrolled, "scheduled": True}
                action = "start"
            else:
                move_campaign(campaign, Action.resume, now=now)
                details, action = {"scheduled": True}, "resume"
            record_audit(session, tenant_id=campaign.tenant_id, user_id=None, action=action,
                         entity="campaign", entity_id=campaign.id, details=details)
            started.append(campaign.id)
    return started


def complete_finished_campaigns(db: Database, *, now: datetime | None = None) -> list[int]:
    """Mark running campaigns with no open lead left as completed."""
    now = now or datetime.now(UTC)
    with db.session(system=True) as session, session.begin():
        completed = complete_finished_in(session, now)
        for campaign_id, tenant_id in completed:
            record_audit(session, tenant_id=tenant_id, user_id=None, action="complete",
                         entity="campaign", entity_id=campaign_id)
    return [campaign_id for campaign_id, _ in completed]
