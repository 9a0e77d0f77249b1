"""Replies recorded by hand or from the command line: a reply stops the lead's sequences.

Until an inbound channel exists, a salesperson records that a lead answered. The lead and each
of its enrolments get `replied_at`; an enrolment waiting for a follow-up ends (`sent` when it was
already messaged, `skipped` when not), so no further step goes out. A reply of STOP also opts the
lead out and suppresses its number. An enrolment a worker holds right now is left to the
pipeline, which sees `replied_at` before it sends the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers
from sqlalchemy import case, select, update

from core.audit import record_audit
from core.campaigns import leads_in_lock_order
from core.db import Database
from core.errors import NotFound, ValidationError
from core.models import (
    CampaignLead,
    Channel,
    Lead,
    LeadStatus,
    Suppression,
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


def normalise_phone(phone: str, default_country: str) -> str:
    try:
        number = phonenumbers.parse(phone, default_country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(f"phone '{phone}' is not a valid number for {default_country}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
        if phone:
            country = session.scalar(
                select(Tenant.default_country).where(Tenant.id == actor.tenant_id)
            ) or "US"
            address = normalise_phone(phone, country)
            lead = session.scalar(select(Lead).where(Lead.phone == address))
        else:
            address = (email or "").strip().lower()
            lead = session.scalar(select(Lead).where(Lead.email == address))
        if lead is None:
            raise NotFound(f"no lead with {'phone' if phone else 'email'} {address}")
        lead.replied_at = lead.replied_at or now
        if stop:
            lead.opted_out_at = lead.opted_out_at or now
            channel = Channel.sms.value if phone else Channel.email.value
            already = session.scalar(select(Suppression.id).where(
                Suppression.channel == channel, Suppression.address == address))
            if already is None:
                session.add(Suppression(channel=channel, address=address,
                                        reason=SuppressionReason.stop.value,
                                        source="reply recorded by hand"))
        session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(leads_in_lock_order(
                CampaignLead.lead_id == lead.id, CampaignLead.replied_at.is_(None))))
            .values(replied_at=now)
            .execution_options(synchronize_session=False)
        )
        stopped = session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(leads_in_lock_order(
                CampaignLead.lead_id == lead.id,
                CampaignLead.status.in_(STOPPABLE_LEAD_STATUSES))))
            .values(
                status=case((CampaignLead.step > 0, LeadStatus.sent.value),
                            else_=LeadStatus.skipped.value),
                status_reason="opted out" if stop else "replied: sequence stopped",
                next_action_at=None,
                completed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        count = int(getattr(stopped, "rowcount", 0) or 0)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="reply",
                     entity="lead", entity_id=lead.id,
                     details={"stop": stop, "sequences_stopped": count})
        return ReplyRecorded(lead.id, count, stop)
