"""Enrolment: the audience a campaign would reach, and enrolling it into `campaign_leads`.

Starting enrols the audience with one INSERT ... SELECT (audiences can be a million leads), once:
a lead already enrolled is never enrolled again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from core.campaigns import load_campaign
from core.db import Database
from core.lifecycle import ENROLLED_STATUS, Action, move_campaign
from core.models import Campaign, CampaignLead, Lead
from core.permissions import Actor, Permission
from core.pipeline.audience import audience_conditions
from core.pipeline.drafting import variant_expression


def count_audience(db: Database, actor: Actor, campaign_id: int) -> int:
    """How many leads starting the campaign would enrol now."""
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = load_campaign(session, campaign_id)
        conditions = audience_conditions(actor.tenant_id, campaign.channel, campaign.audience or {})
        return session.scalar(select(func.count(Lead.id)).where(*conditions)) or 0


def enrol(session: Session, campaign: Campaign, now: datetime) -> int:
    """Enrol the campaign's audience, but for leads already enrolled; returns how many were."""
    already = exists().where(
        CampaignLead.campaign_id == campaign.id, CampaignLead.lead_id == Lead.id
    )
    source = select(
        literal(campaign.tenant_id),
        literal(campaign.id),
        Lead.id,
        variant_expression(Lead.id, campaign.variants or []),
        literal(0),
        literal(ENROLLED_STATUS.value),
        literal(now, CampaignLead.next_action_at.type),
        literal(0),
        literal([], JSON),
        literal({}, JSON),
        literal(0),
        literal(0),
        literal(0),
        literal(now, CampaignLead.created_at.type),
        literal(now, CampaignLead.updated_at.type),
    ).where(*audience_conditions(campaign.tenant_id, campaign.channel, campaign.audience or {}),
            ~already)
    columns = [
        "tenant_id", "campaign_id", "lead_id", "variant", "step", "status", "next_action_at",
        "attempts", "research", "guard_result", "cost_microusd", "input_tokens",
        "output_tokens", "created_at", "updated_at",
    ]
    result = session.execute(insert(CampaignLead).from_select(columns, source))
    return int(getattr(result, "rowcount", 0) or 0)


def start_in(session: Session, campaign: Campaign, now: datetime) -> int:
    """Enrol the audience and set the campaign running, in the caller's transaction; returns how
    many leads were enrolled. Raises Conflict when the campaign's status does not allow a start."""
    move_campaign(campaign, Action.start, now=now)
    return enrol(session, campaign, now)
