"""Running a campaign: start, schedule, pause, resume, cancel, and retry its failed leads.

Each is a person's action, checked against `core.lifecycle.allowed_actions` for the campaign's
status and applied by the life cycle's functions, in one transaction with its audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.campaigns import CampaignView, load_campaign, locked_campaign
from core.db import Database
from core.enrolment import start_in
from core.errors import Conflict, ValidationError
from core.lifecycle import (
    OPEN_ENROLMENT_STATUSES,
    Action,
    cancelled_values,
    move_campaign,
    move_enrolments,
    pause_campaign_in,
    require_action,
    retried_values,
    retryable_condition,
)
from core.models import Campaign, CampaignLead, CampaignStatus, Channel, Tenant
from core.money import format_usd
from core.permissions import Actor, Permission
from core.preflight import preflight
from core.sender_verification import unverified_sender_reason
from core.text import plural


def start_campaign(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignView:
    """Enrol the audience and run. Starting a running campaign again changes nothing."""
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    checks = preflight(db, actor, campaign_id)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        if campaign.status == CampaignStatus.running.value:
            return CampaignView.of(campaign)
        require_action(campaign, Action.start)
        if not checks.ready:
            raise checks.refusal(campaign.name)
        enrolled = start_in(session, campaign, now)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="start",
                     entity="campaign", entity_id=campaign.id, details={"enrolled": enrolled})
        session.flush()
        return CampaignView.of(campaign)


def schedule_campaign(
    db: Database, actor: Actor, campaign_id: int, start_at: datetime, *, now: datetime | None = None
) -> CampaignView:
    """Start a draft later: the runner starts it when `start_at` comes."""
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    if start_at.tzinfo is None:
        raise ValidationError("give the start time with its time zone")
    if start_at <= now:
        raise ValidationError("the start time is in the past: start the campaign now instead")
    checks = preflight(db, actor, campaign_id)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        require_action(campaign, Action.schedule)
        if not checks.ready:
            raise checks.refusal(campaign.name, "be scheduled")
        move_campaign(campaign, Action.schedule, now=now, start_at=start_at)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="schedule", entity="campaign", entity_id=campaign.id,
                     details={"start_at": start_at.isoformat()})
        session.flush()
        return CampaignView.of(campaign)


def pause_campaign(
    db: Database, actor: Actor, campaign_id: int, reason: str | None = None
) -> CampaignView:
    actor.require(Permission.run_campaigns)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        require_action(campaign, Action.pause)
        pause_campaign_in(session, campaign_id, reason or f"paused by {actor.username or 'a user'}",
                          user_id=actor.user_id)
        session.refresh(campaign)
        return CampaignView.of(campaign)


def _refuse_an_unverified_sender(session: Session, campaign: Campaign, action: str) -> None:
    """A resume's check that an email campaign's From address is verified (a start's is in core.preflight)."""
    if campaign.channel != Channel.email.value:
        return
    tenant = session.get(Tenant, campaign.tenant_id)
    reason = unverified_sender_reason(session, campaign.tenant_id, tenant.email_sender if tenant else None)
    if reason:
        raise Conflict(f"campaign '{campaign.name}' cannot {action}: {reason}")


def _check_budget_left(campaign: Campaign) -> None:
    cap = campaign.budget_cap_microusd
    if cap is not None and (campaign.spent_microusd or 0) >= cap:
        raise Conflict(
            f"campaign '{campaign.name}' has spent {format_usd(campaign.spent_microusd)} of its "
            f"{format_usd(cap)} budget cap: raise the cap before resuming (a paused campaign's cap "
            "can be changed on its Editor tab)"
        )


def resume_campaign(db: Database, actor: Actor, campaign_id: int) -> CampaignView:
    actor.require(Permission.run_campaigns)
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        require_action(campaign, Action.resume)
        _check_budget_left(campaign)
        _refuse_an_unverified_sender(session, campaign, "resume")
        move_campaign(campaign, Action.resume, now=now)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="resume",
                     entity="campaign", entity_id=campaign.id)
        session.flush()
        return CampaignView.of(campaign)


def cancel_campaign(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> CampaignView:
    """Stop for good: every open lead ends `cancelled`, none is left in flight.

    The leases are cleared too: a worker still running one of these leads can no longer write
    a ledger row or an outcome (both are guarded by the lease), so nothing more is sent. A send
    already under way when the campaign is cancelled is recorded in the ledger as it ends.
    """
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        require_action(campaign, Action.cancel)
        cancelled = move_enrolments(session, cancelled_values(now), CampaignLead.campaign_id == campaign_id,
                                    CampaignLead.status.in_(OPEN_ENROLMENT_STATUSES))
        # A pause's reason ("raise the cap and resume") no longer holds: say who ended it.
        move_campaign(campaign, Action.cancel, now=now, reason=f"cancelled by {actor.username or 'a user'}")
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="cancel",
                     entity="campaign", entity_id=campaign.id,
                     details={"leads_cancelled": cancelled})
        session.flush()
        return CampaignView.of(campaign)


def retryable_failed_leads(db: Database, actor: Actor, campaign_id: int) -> int:
    """How many failed leads `retry_failed_leads` would put back (reviewer rejections are not)."""
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        load_campaign(session, campaign_id)
        return session.scalar(
            select(func.count(CampaignLead.id)).where(*retryable_condition(campaign_id))
        ) or 0


def retry_failed_leads(
    db: Database, actor: Actor, campaign_id: int, *, now: datetime | None = None
) -> int:
    """Put the campaign's failed leads back to pending, attempts reset; returns how many.

    Skipped, unknown (a send that may have gone out) and sent leads are left alone, and so are
    drafts a reviewer rejected. Each lead is retried at the step where it failed; a ledger row
    its failed send left is reused (a failed row was never sent). A completed campaign reopens
    paused, for a person to resume when the cause is fixed; a running one picks the leads up
    at once.
    """
    actor.require(Permission.run_campaigns)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        campaign = locked_campaign(session, campaign_id)
        require_action(campaign, Action.retry_failed)
        retried = move_enrolments(session, retried_values(now, actor.username or "a user"),
                                  *retryable_condition(campaign_id))
        if retried == 0:
            return 0
        move_campaign(campaign, Action.retry_failed, now=now,
                      reason=f"{plural(retried, 'failed lead')} put back to pending: resume the "
                             "campaign to send them")
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="retry_failed", entity="campaign", entity_id=campaign.id,
                     details={"leads": retried})
        return retried
