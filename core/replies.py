"""Replies and what they do to the lead's sequences: stop them, postpone them, opt the lead out.

A salesperson records by hand that a lead answered (`record_reply`); the reply agent
(core.inbound.agent) acts on each inbound message through the `*_in` functions below, in its own
transaction. The lead and each
of its enrolments get `replied_at`; an enrolment waiting for a follow-up ends (`sent` when it was
already messaged, `skipped` when not), so no further step goes out. A reply of STOP also opts the
lead out and suppresses its number. An enrolment a worker holds right now is left to the
pipeline, which sees `replied_at` before it sends the next step.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.audit import record_audit
from core.campaigns import CLAIMABLE_LEAD_STATUSES, leads_in_lock_order
from core.compliance.suppression import suppress_address
from core.db import Database
from core.errors import NotFound, ValidationError
from core.leads.normalise import PhoneNormaliser, normalise_email
from core.models import (
    CampaignLead,
    Channel,
    Lead,
    LeadStatus,
    SuppressionReason,
    Tenant,
)
from core.permissions import Actor, Permission

# Enrolments a reply can still stop: waiting to be claimed, or waiting for a person.
STOPPABLE_LEAD_STATUSES = (
    LeadStatus.pending.value,
    LeadStatus.deferred.value,
    LeadStatus.awaiting_approval.value,
    LeadStatus.approved.value,
)


@dataclass(frozen=True)
class ReplyRecorded:
    lead_id: int
    sequences_stopped: int
    opted_out: bool


def _address(session: Session, tenant_id: int, phone: str | None, email: str | None) -> str:
    """The phone or email as the import stored it (E.164, lower-case), so the lead is found."""
    if phone:
        country = session.scalar(select(Tenant.default_country).where(Tenant.id == tenant_id)) or "US"
        parsed = PhoneNormaliser(country)(phone)
        if parsed.e164 is None:
            raise ValidationError(parsed.error(phone) or f"phone '{phone}' is not a valid number")
        return parsed.e164
    address, problem = normalise_email(email or "")
    if address is None:
        raise ValidationError(problem or "give the lead's phone or its email (one of them)")
    return address


def record_reply(
    db: Database,
    actor: Actor,
    *,
    phone: str | None = None,
    email: str | None = None,
    stop: bool = False,
    now: datetime | None = None,
) -> ReplyRecorded:
    """Record that the lead with this phone (or email) replied; `stop` also opts it out."""
    actor.require(Permission.run_campaigns)
    if bool(phone) == bool(email):
        raise ValidationError("give the lead's phone or its email (one of them)")
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        address = _address(session, actor.tenant_id, phone, email)
        lead = session.scalar(select(Lead).where((Lead.phone if phone else Lead.email) == address))
        if lead is None:
            raise NotFound(f"no lead with {'phone' if phone else 'email'} {address}")
        lead.replied_at = lead.replied_at or now
        if stop:
            opt_out_in(session, tenant_id=actor.tenant_id, lead=lead,
                       channel=Channel.sms.value if phone else Channel.email.value, address=address,
                       reason=SuppressionReason.stop, source="reply recorded by hand", now=now)
        count = stop_sequences_in(session, lead_id=lead.id, now=now,
                                  reason="opted out" if stop else "replied: sequence stopped")
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="reply",
                     entity="lead", entity_id=lead.id,
                     details={"stop": stop, "sequences_stopped": count})
        return ReplyRecorded(lead.id, count, stop)


def _of_campaigns(campaign_ids: Collection[int] | None) -> list[ColumnElement[bool]]:
    return [] if campaign_ids is None else [CampaignLead.campaign_id.in_(list(campaign_ids))]


def stop_sequences_in(
    session: Session,
    *,
    lead_id: int,
    now: datetime,
    reason: str,
    campaign_ids: Collection[int] | None = None,
) -> int:
    """The lead's enrolments (of `campaign_ids` only, when given) are marked replied, and those
    waiting end: `sent` when already messaged, `skipped` when not. Returns how many ended."""
    if campaign_ids is not None and not campaign_ids:
        return 0
    scope = _of_campaigns(campaign_ids)
    session.execute(
        update(CampaignLead)
        .where(CampaignLead.id.in_(leads_in_lock_order(
            CampaignLead.lead_id == lead_id, CampaignLead.replied_at.is_(None), *scope)))
        .values(replied_at=now)
        .execution_options(synchronize_session=False)
    )
    stopped = session.execute(
        update(CampaignLead)
        .where(CampaignLead.id.in_(leads_in_lock_order(
            CampaignLead.lead_id == lead_id,
            CampaignLead.status.in_(STOPPABLE_LEAD_STATUSES), *scope)))
        .values(
            status=case((CampaignLead.step > 0, LeadStatus.sent.value),
                        else_=LeadStatus.skipped.value),
            status_reason=reason,
            next_action_at=None,
            completed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(stopped, "rowcount", 0) or 0)


def postpone_sequences_in(
    session: Session, *, lead_id: int, until: datetime, reason: str, campaign_ids: Collection[int]
) -> int:
    """The lead's next step in these campaigns waits until `until` (never brought forward)."""
    if not campaign_ids:
        return 0
    postponed = session.execute(
        update(CampaignLead)
        .where(CampaignLead.id.in_(leads_in_lock_order(
            CampaignLead.lead_id == lead_id,
            CampaignLead.campaign_id.in_(list(campaign_ids)),
            CampaignLead.status.in_(CLAIMABLE_LEAD_STATUSES),
            (CampaignLead.next_action_at.is_(None)) | (CampaignLead.next_action_at < until))))
        .values(next_action_at=until, status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(postponed, "rowcount", 0) or 0)


def opt_out_in(
    session: Session,
    *,
    tenant_id: int,
    lead: Lead,
    channel: str,
    address: str,
    reason: SuppressionReason,
    source: str,
    now: datetime,
) -> None:
    """The lead is opted out and the address it wrote from suppressed on that channel."""
    lead.opted_out_at = lead.opted_out_at or now
    suppress_address(session, tenant_id=tenant_id, channel=channel, address=address, reason=reason,
                     source=source)
