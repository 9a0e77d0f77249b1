"""Replies recorded by hand, from the command line or by a provider: a reply stops the lead's sequences.

A salesperson records that a lead answered, or a STOP arrives by SMS (`record_stop_in`). The lead and each
of its enrolments get `replied_at`; an enrolment waiting for a follow-up ends (`sent` when it was
already messaged, `skipped` when not), so no further step goes out. A reply of STOP also opts the
lead out and suppresses its number. An enrolment a worker holds right now is left to the
pipeline, which sees `replied_at` before it sends the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.compliance.suppression import suppress_address, suppression_reason
from core.db import Database
from core.errors import NotFound, ValidationError
from core.leads.normalise import normalise_email
from core.leads.phones import PhoneNormaliser
from core.lifecycle import (
    STOPPABLE_LEAD_STATUSES,
    enrolments_in_lock_order,
    move_enrolments,
    stopped_by_reply_values,
)
from core.models import (
    CampaignLead,
    Channel,
    Lead,
    SuppressionReason,
    Tenant,
)
from core.permissions import Actor, Permission


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
        return _apply_reply(session, tenant_id=actor.tenant_id, user_id=actor.user_id, lead=lead,
                            channel=Channel.sms if phone else Channel.email, address=address, stop=stop,
                            source="reply recorded by hand", now=now)


def record_stop_in(
    session: Session,
    *,
    tenant_id: int,
    channel: Channel,
    address: str,
    source: str,
    now: datetime,
    user_id: int | None = None,
) -> list[ReplyRecorded]:
    """A STOP from this address (normalised) arrived by the provider, inside the caller's tenant
    transaction: the address is suppressed at once, and each lead holding it opted out with its
    sequences stopped, as a STOP recorded by hand. An address no lead holds is still suppressed."""
    column = Lead.phone if channel is Channel.sms else Lead.email
    leads = session.scalars(select(Lead).where(column == address).order_by(Lead.id)).all()
    if not leads:
        suppress_address(session, tenant_id=tenant_id, channel=channel.value, address=address,
                         reason=SuppressionReason.stop, source=source[:255])
    return [
        _apply_reply(session, tenant_id=tenant_id, user_id=user_id, lead=lead, channel=channel,
                     address=address, stop=True, source=source, now=now)
        for lead in leads
    ]


def _apply_reply(
    session: Session,
    *,
    tenant_id: int,
    user_id: int | None,
    lead: Lead,
    channel: Channel,
    address: str,
    stop: bool,
    source: str,
    now: datetime,
) -> ReplyRecorded:
    lead.replied_at = lead.replied_at or now
    if stop:
        lead.opted_out_at = lead.opted_out_at or now
        suppress_address(session, tenant_id=tenant_id, channel=channel.value, address=address,
                         reason=SuppressionReason.stop, source=source[:255])
    session.execute(
        update(CampaignLead)
        .where(CampaignLead.id.in_(enrolments_in_lock_order(
            CampaignLead.lead_id == lead.id, CampaignLead.replied_at.is_(None))))
        .values(replied_at=now)
        .execution_options(synchronize_session=False)
    )
    count = _stop_sequences(session, lead.id, now, opted_out=stop)
    record_audit(session, tenant_id=tenant_id, user_id=user_id, action="reply",
                 entity="lead", entity_id=lead.id,
                 details={"stop": stop, "sequences_stopped": count, "source": source})
    return ReplyRecorded(lead.id, count, stop)


def _stop_sequences(session: Session, lead_id: int, now: datetime, *, opted_out: bool) -> int:
    """End the lead's enrolments that wait for a step or a person; how many."""
    return move_enrolments(session, stopped_by_reply_values(now, opted_out=opted_out),
                           CampaignLead.lead_id == lead_id,
                           CampaignLead.status.in_(STOPPABLE_LEAD_STATUSES))


@dataclass(frozen=True)
class OptedOut:
    opted_out: bool  # the lead was not opted out before
    suppressed: bool  # the address was not suppressed before
    sequences_stopped: int

    @property
    def changed(self) -> bool:
        return self.opted_out or self.suppressed or self.sequences_stopped > 0


def opt_out_lead_in(
    session: Session,
    *,
    tenant_id: int,
    lead: Lead | None,
    channel: str,
    address: str,
    reason: SuppressionReason,
    source: str,
    now: datetime,
) -> OptedOut:
    """The person's own opt-out (an unsubscribe link, a STOP) inside the caller's transaction: the
    address suppressed, the lead (when known) opted out and its waiting sequences stopped. Doing it
    again changes nothing and says so (`changed` is False)."""
    suppressed = suppression_reason(session, channel=channel, address=address) is None
    if suppressed:
        suppress_address(session, tenant_id=tenant_id, channel=channel, address=address,
                         reason=reason, source=source)
    if lead is None:
        return OptedOut(False, suppressed, 0)
    opted_out = lead.opted_out_at is None
    lead.opted_out_at = lead.opted_out_at or now
    return OptedOut(opted_out, suppressed, _stop_sequences(session, lead.id, now, opted_out=True))
