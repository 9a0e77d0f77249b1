"""Campaign housekeeping: clone any campaign, archive and restore a finished one, delete a draft.

Each is one transaction with its audit entry. A clone is a new draft with the same settings
(not the schedule, the spend or the enrolments), named "Copy of ...". Archiving hides a
completed, cancelled or failed campaign from the default lists (`include_archived` shows it);
restoring brings it back. Only a draft that never sent a message can be deleted: anything that
has sent keeps its ledger, and is archived instead. The model calls of a deleted draft's
previews stay in the cost reports, without their campaign.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from core.audit import record_audit
from core.campaigns import CampaignView, locked_campaign
from core.db import Database
from core.errors import Conflict
from core.models import (
    FINISHED_CAMPAIGN_STATUSES,
    Campaign,
    CampaignLead,
    CampaignStatus,
    LLMCall,
    Message,
)
from core.permissions import Actor, Permission

NAME_LIMIT = 200
COPY_PREFIX = "Copy of "
# What a clone takes from its original: what it says, to whom, how and how fast.
CLONED_FIELDS = (
    "description", "channel", "system_prompt", "variants", "model", "temperature", "audience",
    "steps", "research_web", "max_sms_segments", "send_window", "sends_per_minute",
    "budget_cap_microusd", "approval_required",
)
FINISHED = tuple(s.value for s in FINISHED_CAMPAIGN_STATUSES)


def copy_name(name: str) -> str:
    """"Copy of <name>", cut to the length a campaign name may have."""
    return (COPY_PREFIX + name)[:NAME_LIMIT].rstrip()


def clone_campaign(db: Database, actor: Actor, campaign_id: int) -> CampaignView:
    """A new draft with the settings of `campaign_id` (any status), named "Copy of ...".

    A/B weights are not copied (a "keep the winner" of the original): the copy splits its
    leads evenly again.
    """
    actor.require(Permission.edit_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        original = locked_campaign(session, campaign_id)
        values = {field: getattr(original, field) for field in CLONED_FIELDS}
        values["variants"] = tuple(replace(v, weight=None) for v in original.variants)
        copy = Campaign(tenant_id=actor.tenant_id, name=copy_name(original.name),
                        created_by=actor.user_id, status=CampaignStatus.draft.value, **values)
        session.add(copy)
        session.flush()
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="clone",
                     entity="campaign", entity_id=copy.id,
                     details={"from_campaign": original.id, "name": copy.name})
        return CampaignView.of(copy)


def archive_campaign(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignView:
    """Hide a completed, cancelled or failed campaign from the default lists."""
    return _set_archived(db, actor, campaign_id, now or datetime.now(UTC))


def restore_campaign(db: Database, actor: Actor, campaign_id: int) -> CampaignView:
    """Bring an archived campaign back to the default lists."""
    return _set_archived(db, actor, campaign_id, None)


def _set_archived(
    db: Database, actor: Actor, campaign_id: int, archived_at: datetime | None
) -> CampaignView:
    actor.require(Permission.edit_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        if (campaign.archived_at is None) == (archived_at is None):
            raise Conflict(f"campaign '{campaign.name}' is "
                           + ("not archived" if archived_at is None else "already archived"))
        if archived_at is not None and campaign.status not in FINISHED:
            raise Conflict(
                f"campaign '{campaign.name}' is {campaign.status}: only a completed, cancelled or "
                "failed campaign can be archived (cancel it first, or delete it if it is a draft)"
            )
        campaign.archived_at = archived_at
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="restore" if archived_at is None else "archive",
                     entity="campaign", entity_id=campaign.id, details={"name": campaign.name})
        session.flush()
        return CampaignView.of(campaign)


def delete_campaign(db: Database, actor: Actor, campaign_id: int) -> str:
    """Delete a draft that never sent anything; returns its name (for the confirmation)."""
    actor.require(Permission.edit_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        sent = session.scalar(
            select(func.count(Message.id)).where(Message.campaign_id == campaign_id)
        ) or 0
        if campaign.status != CampaignStatus.draft.value or sent:
            raise Conflict(
                f"campaign '{campaign.name}' is {campaign.status}"
                + (" and has sent messages" if sent else "")
                + ": only a draft that never sent can be deleted (archive it once it is finished)"
            )
        enrolled = session.scalar(
            select(func.count(CampaignLead.id)).where(CampaignLead.campaign_id == campaign_id)
        ) or 0
        # Spend is history: the previews' model calls stay, without the campaign.
        session.execute(
            update(LLMCall).where(LLMCall.campaign_id == campaign_id).values(campaign_id=None)
            .execution_options(synchronize_session=False)
        )
        name = campaign.name
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="delete",
                     entity="campaign", entity_id=campaign.id,
                     details={"name": name, "channel": campaign.channel, "enrolled": enrolled})
        session.delete(campaign)
        return name
