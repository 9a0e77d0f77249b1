"""Replies and what they do to the lead's sequences: stop them, postpone them, opt the lead out.

A salesperson records by hand that a lead answered (`record_reply`), a STOP arrives by SMS
(`record_stop_in`), an unsubscribe link is clicked (`opt_out_lead_in`), or the reply agent
(core.inbound.agent) acts on an inbound message through the `*_in` functions, in the caller's
transaction; the columns each transition writes come from core.lifecycle. The lead and each
of its enrolments get `replied_at`; an enrolment waiting for a follow-up ends (`sent` when it was
already messaged, `skipped` when not), so no further step goes out. A reply of STOP also opts the
lead out and suppresses its number. An enrolment a worker holds right now is left to the
pipeline, which sees `replied_at` before it sends the next step.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.audit import record_audit
from core.compliance.suppression import suppress_address, suppression_reason
from core.db import Database
from core.errors import NotFound, ValidationError
from core.leads.normalise import normalise_email
from core.leads.phones import PhoneNormaliser
from core.lifecycle import (
    CLAIMABLE_ENROLMENT_STATUSES,
    STOPPABLE_ENROLMENT_STATUSES,
    move_enrolments,
    postponed_values,
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
from core.webhooks.events import EventType, emit, lead_opted_out_data


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
        mark_opted_out(session, tenant_id=tenant_id, lead=lead, now=now, channel=channel.value,
                       reason=SuppressionReason.stop)
        suppress_address(session, tenant_id=tenant_id, channel=channel.value, address=address,
                         reason=SuppressionReason.stop, source=source[:255])
    count = stop_sequences_in(session, lead_id=lead.id, now=now,
                              reason="opted out" if stop else "replied: sequence stopped")
    record_audit(session, tenant_id=tenant_id, user_id=user_id, action="reply",
                 entity="lead", entity_id=lead.id,
                 details={"stop": stop, "sequences_stopped": count, "source": source})
    return ReplyRecorded(lead.id, count, stop)


def mark_opted_out(
    session: Session, *, tenant_id: int, lead: Lead, now: datetime, channel: str | None,
    reason: SuppressionReason | str | None,
) -> bool:
    """Opt the lead out (once: a second opt-out keeps the first time) and report it to the
    tenant's webhooks; whether it was not opted out before."""
    if lead.opted_out_at is not None:
        return False
    lead.opted_out_at = now
    emit(session, tenant_id, EventType.lead_opted_out,
         lead_opted_out_data(lead.id, now=now, channel=channel, reason=reason), now=now)
    return True


def _of_campaigns(campaign_ids: Collection[int] | None) -> list[ColumnElement[bool]]:
    return [] if campaign_ids is None else [CampaignLead.campaign_id.in_(list(campaign_ids))]


def stop_sequences_in(
    session: Session,
    *,
    lead_id: int,
    now: datetime,
    reason: str,
    campaign_ids: Collection[int] | None = None,
    replied: bool = True,
) -> int:
    """The lead's enrolments (of `campaign_ids` only, when given) that wait for a step or a person
    end: `sent` when already messaged, `skipped` when not. With `replied` (an answer, not an
    unsubscribe click) they are marked replied too. Returns how many ended."""
    if campaign_ids is not None and not campaign_ids:
        return 0
    scope = _of_campaigns(campaign_ids)
    if replied:
        move_enrolments(session, {"replied_at": now}, CampaignLead.lead_id == lead_id,
                        CampaignLead.replied_at.is_(None), *scope)
    values = {**stopped_by_reply_values(now, opted_out=False), "status_reason": reason}
    return move_enrolments(session, values, CampaignLead.lead_id == lead_id,
                           CampaignLead.status.in_(STOPPABLE_ENROLMENT_STATUSES), *scope)


def postpone_sequences_in(
    session: Session, *, lead_id: int, until: datetime, reason: str, campaign_ids: Collection[int]
) -> int:
    """The lead's next step in these campaigns waits until `until` (never brought forward)."""
    if not campaign_ids:
        return 0
    return move_enrolments(
        session, postponed_values(until, reason), CampaignLead.lead_id == lead_id,
        CampaignLead.campaign_id.in_(list(campaign_ids)),
        CampaignLead.status.in_(CLAIMABLE_ENROLMENT_STATUSES),
        or_(CampaignLead.next_action_at.is_(None), CampaignLead.next_action_at < until))


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
    mark_opted_out(session, tenant_id=tenant_id, lead=lead, now=now, channel=channel, reason=reason)
    suppress_address(session, tenant_id=tenant_id, channel=channel, address=address, reason=reason,
                     source=source)


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
    opted_out = mark_opted_out(session, tenant_id=tenant_id, lead=lead, now=now, channel=channel,
                               reason=reason)
    return OptedOut(opted_out, suppressed,
                    stop_sequences_in(session, lead_id=lead.id, now=now, reason="opted out", replied=False))
