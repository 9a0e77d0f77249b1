"""Campaigns: create, edit within what the status allows, read and list; a campaign's ledger rows.

The life cycle (start, schedule, pause, resume, cancel) is in core.campaign_runs over the rules of
core.lifecycle; enrolment in core.enrolment; progress in core.campaign_progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from core.audit import record_audit
from core.campaign_prompts import DEFAULT_PROMPTS
from core.campaign_rules import (
    DRAFT_EDITABLE,
    EDITABLE_BY_STATUS,
    PAUSED_EDITABLE,
    FieldInvalid,
    check_changes,
)
from core.campaign_shape import CampaignView, check_steps
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.merge_fields import check_campaign_prompts
from core.models import Campaign, CampaignStatus, Message
from core.permissions import Actor, Permission

# -- create and edit -------------------------------------------------------------------------


def create_campaign(
    db: Database,
    actor: Actor,
    *,
    name: str,
    channel: str,
    system_prompt: str | None = None,
    model: str | None = None,
    approval_required: bool = False,
    budget_cap_microusd: int | None = None,
    **fields: Any,
) -> CampaignView:
    """A new draft campaign; with no prompt it gets the channel's default prompt."""
    actor.require(Permission.edit_campaigns)
    unknown = set(fields) - DRAFT_EDITABLE
    if unknown:
        raise ValidationError(f"unknown campaign field {', '.join(sorted(unknown))}")
    given: dict[str, Any] = {"name": name, "channel": channel,
                             "budget_cap_microusd": budget_cap_microusd, **fields}
    # With no prompt the channel's default; a channel that is not one is an error of its own.
    prompt = system_prompt or DEFAULT_PROMPTS.get(channel)
    if prompt is not None:
        given["system_prompt"] = prompt
    values: dict[str, Any] = {
        "model": model or db.settings.default_model,
        "approval_required": approval_required,
        "steps": check_steps(None),
        "audience": {},
    }
    values.update(check_changes(given))
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        check_campaign_prompts(session, values)
        campaign = Campaign(created_by=actor.user_id, **values)
        session.add(campaign)
        session.flush()
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="create",
                     entity="campaign", entity_id=campaign.id,
                     details={"name": campaign.name, "channel": campaign.channel})
        return CampaignView.of(campaign)


def load_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign (of the session's tenant); NotFound when there is none."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def locked_campaign(session: Session, campaign_id: int) -> Campaign:
    # FOR NO KEY UPDATE: it still serialises life-cycle changes, but does not block the key-share
    # locks that workers' inserts (ledger rows, model calls, events) take on their campaign.
    campaign = session.scalar(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update(key_share=True)
    )
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def update_campaign(db: Database, actor: Actor, campaign_id: int, **changes: Any) -> CampaignView:
    """Edit a campaign within what its status allows (see core.campaign_rules)."""
    actor.require(Permission.edit_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        allowed = EDITABLE_BY_STATUS.get(campaign.status, frozenset())
        refused = sorted(set(changes) - allowed)
        if refused:
            unknown = sorted(set(refused) - DRAFT_EDITABLE)
            if unknown:
                raise ValidationError(f"unknown campaign field {', '.join(unknown)}")
            hint = (
                "pause it first" if campaign.status == CampaignStatus.running.value
                and set(refused) <= PAUSED_EDITABLE else "only a draft may change that"
            )
            raise Conflict(
                f"campaign '{campaign.name}' is {campaign.status}: {', '.join(refused)} cannot be "
                f"changed now ({hint})"
            )
        cleaned = check_changes(changes)
        check_campaign_prompts(session, cleaned)
        for key, value in cleaned.items():
            setattr(campaign, key, value)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="edit",
                     entity="campaign", entity_id=campaign.id,
                     details={"fields": sorted(cleaned)})
        session.flush()
        return CampaignView.of(campaign)


def get_campaign(db: Database, actor: Actor, campaign_id: int) -> CampaignView:
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return CampaignView.of(load_campaign(session, campaign_id))


def archived_condition(archived: bool | None) -> ColumnElement[bool]:
    """Which campaigns a list shows: not archived (the default), only archived, or all (None)."""
    if archived is None:
        return literal(True)
    return Campaign.archived_at.is_not(None) if archived else Campaign.archived_at.is_(None)


def list_campaigns(db: Database, actor: Actor, *, archived: bool | None = False) -> list[CampaignView]:
    """The tenant's campaigns, newest first; archived ones only when asked (see `archived_condition`)."""
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return [
            CampaignView.of(c)
            for c in session.scalars(
                select(Campaign).where(archived_condition(archived)).order_by(Campaign.created_at.desc())
            )
        ]


def campaign_page(
    db: Database, actor: Actor, *, status: str | None = None, archived: bool | None = False,
    after: tuple[datetime, int] | None = None, limit: int = 50,
) -> list[CampaignView]:
    """One page of the list of `list_campaigns` (newest first), for callers that page through it.

    `after` is the (created_at, id) of the last campaign of the page before: a keyset, so a
    campaign created while a caller pages neither shifts nor repeats the pages after it.
    """
    actor.require(Permission.view_campaigns)
    if status is not None and status not in {s.value for s in CampaignStatus}:
        raise FieldInvalid(
            f"status '{status}' is not one of: {', '.join(s.value for s in CampaignStatus)}",
            field="status")
    query = select(Campaign).where(archived_condition(archived))
    if status is not None:
        query = query.where(Campaign.status == status)
    if after is not None:
        created_at, campaign_id = after
        query = query.where(or_(Campaign.created_at < created_at,
                                and_(Campaign.created_at == created_at, Campaign.id < campaign_id)))
    query = query.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return [CampaignView.of(c) for c in session.scalars(query)]


# -- messages and lookups --------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    id: int
    lead_id: int | None  # None: the lead was erased, its message kept anonymised
    to: str
    step: int
    status: str
    subject: str | None
    body: str
    provider: str
    created_at: datetime
    sent_at: datetime | None


def campaign_messages(
    db: Database, actor: Actor, campaign_id: int, *, status: str | None = None,
    limit: int | None = None,
) -> list[MessageView]:
    """The ledger rows of a campaign, oldest first."""
    actor.require(Permission.view_campaigns)
    query = select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
    if status:
        query = query.where(Message.status == status)
    if limit:
        query = query.limit(limit)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        load_campaign(session, campaign_id)
        return [
            MessageView(m.id, m.lead_id, m.to_address, m.step, m.status, m.subject, m.body,
                        m.provider, m.created_at, m.sent_at)
            for m in session.scalars(query)
        ]


def tenant_of_campaign(db: Database, campaign_id: int) -> int:
    """The tenant a campaign belongs to: the CLI addresses campaigns by id alone."""
    with db.session(system=True, read_only=True) as session:
        tenant_id = session.scalar(select(Campaign.tenant_id).where(Campaign.id == campaign_id))
    if tenant_id is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return int(tenant_id)
