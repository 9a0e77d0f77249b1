"""Erasing a lead on request (GDPR art. 17): what goes, what stays anonymised, what stays suppressed.

In one transaction:
- deleted: the lead, its tags, its enrolments and their processing log (events: research facts,
  drafts and errors quote the lead);
- kept, anonymised: its messages in the send ledger (and the outbox's copies), so that sent
  counts, segments and the cost figures stay true. The recipient becomes ERASED_ADDRESS, the
  body ERASED_BODY, the subject and the provider's error empty; campaign, step, channel,
  segments, provider, provider message id, status and times stay; the links to the lead and the
  enrolment become empty. Its model calls stay (their cost counts) without the enrolment link;
- kept, suppressed: every phone and email of the lead (its own and its alternates), with the reason
  `erasure`, so that a re-import may bring the lead back but no campaign messages it again. A
  suppression added by hand before (an opt-out) becomes `erasure` too: undoing that opt-out no
  longer lifts it;
- redacted: the before/after values of the lead's edits in the audit log (the field names stay);
- audited: one `lead.erase` entry with the lead's number and the counts, without personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, ValidationError
from core.leads.detail import UPDATE_ACTION, lead_addresses, load_lead, of_lead
from core.leads.queries import lead_name
from core.models import (
    AuditLog,
    CampaignLead,
    Channel,
    EnrolmentStatus,
    Event,
    Lead,
    LeadTag,
    LLMCall,
    Message,
    MessageStatus,
    OutboxMessage,
    Suppression,
    SuppressionReason,
)
from core.permissions import Actor, Permission
from core.suppressions import suppress_in

ERASE_ACTION = "lead.erase"
ERASED_ADDRESS = "erased"
ERASED_BODY = "[erased on request]"


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing the lead would do, for the confirmation before it."""

    lead_id: int
    name: str  # what the person types to confirm
    tags: int
    enrolments: int
    messages: int
    addresses: int  # phones and emails that stay suppressed
    already_suppressed: int


@dataclass(frozen=True)
class ErasureDone:
    lead_id: int
    tags: int
    enrolments: int
    messages: int
    suppressions_added: int
    audit_entries_redacted: int


def _counts(session: Session, lead: Lead) -> tuple[int, int, int, list[tuple[str, str]], int]:
    tags = session.scalar(select(func.count(LeadTag.lead_id)).where(LeadTag.lead_id == lead.id)) or 0
    enrolments = session.scalar(
        select(func.count(CampaignLead.id)).where(CampaignLead.lead_id == lead.id)
    ) or 0
    messages = session.scalar(select(func.count(Message.id)).where(of_lead(lead.id))) or 0
    addresses = lead_addresses(lead.phone, lead.email, lead.alternates)
    suppressed = sum(
        1 for channel, address in addresses
        if session.scalar(select(Suppression.id).where(Suppression.channel == channel,
                                                       Suppression.address == address)) is not None
    )
    return tags, enrolments, messages, addresses, suppressed


def plan_erasure(db: Database, actor: Actor, lead_id: int) -> ErasurePlan:
    actor.require(Permission.manage_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        lead = load_lead(session, lead_id)
        tags, enrolments, messages, addresses, suppressed = _counts(session, lead)
        return ErasurePlan(lead.id, lead_name(lead), tags, enrolments, messages, len(addresses), suppressed)


def name_matches(typed: str, name: str) -> bool:
    """Whether what the person typed to confirm is the lead's name (case and spacing aside)."""
    return bool(typed.strip()) and " ".join(typed.split()).casefold() == " ".join(name.split()).casefold()


def erase_lead(db: Database, actor: Actor, lead_id: int, *, confirm: str) -> ErasureDone:
    """Erase the lead as the module docstring says; `confirm` is the lead's name as typed."""
    actor.require(Permission.manage_leads)
    actor.require(Permission.manage_suppressions)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        lead = load_lead(session, lead_id)
        name = lead_name(lead)
        if not name_matches(confirm, name):
            raise ValidationError(f"type the lead's name ({name}) to confirm the erasure")
        # Locked so that no worker claims one of them meanwhile (the claim skips locked rows).
        enrolment_ids = list(session.scalars(
            select(CampaignLead.id).where(CampaignLead.lead_id == lead_id).with_for_update()
        ))
        busy = session.scalar(
            select(func.count(CampaignLead.id))
            .where(CampaignLead.lead_id == lead_id, CampaignLead.status == EnrolmentStatus.in_progress.value)
        ) or 0
        busy += session.scalar(
            select(func.count(Message.id))
            .where(of_lead(lead_id), Message.status == MessageStatus.sending.value)
        ) or 0
        if busy:
            raise Conflict(f"{name} is being messaged right now; try again in a minute")
        tags, enrolments, messages, addresses, _suppressed = _counts(session, lead)
        added = 0
        for channel in Channel:
            wanted = [a for c, a in addresses if c == channel.value]
            if not wanted:
                continue
            added += len(suppress_in(session, actor.tenant_id, channel, wanted, SuppressionReason.erasure,
                                     f"lead #{lead_id} erased on request"))
            session.execute(
                update(Suppression)
                .where(Suppression.channel == channel.value, Suppression.address.in_(wanted),
                       Suppression.reason == SuppressionReason.manual.value)
                .values(reason=SuppressionReason.erasure.value)
            )
        keys = list(session.scalars(select(Message.idempotency_key).where(of_lead(lead_id))))
        session.execute(
            update(Message).where(of_lead(lead_id)).values(
                to_address=ERASED_ADDRESS, subject=None, body=ERASED_BODY, error=None,
                lead_id=None, campaign_lead_id=None,
            )
        )
        if keys:
            session.execute(
                update(OutboxMessage).where(OutboxMessage.idempotency_key.in_(keys))
                .values(to_address=ERASED_ADDRESS, subject=None, body=ERASED_BODY)
            )
        redacted = 0
        for entry in session.scalars(
            select(AuditLog).where(AuditLog.entity == "lead", AuditLog.entity_id == str(lead_id),
                                   AuditLog.action == UPDATE_ACTION)
        ):
            entry.details = {"fields": sorted((entry.details or {}).get("after", {}))}
            redacted += 1
        if enrolment_ids:
            session.execute(update(LLMCall).where(LLMCall.campaign_lead_id.in_(enrolment_ids))
                            .values(campaign_lead_id=None))
            session.execute(delete(Event).where(Event.campaign_lead_id.in_(enrolment_ids)))
            session.execute(delete(CampaignLead).where(CampaignLead.id.in_(enrolment_ids)))
        session.execute(delete(LeadTag).where(LeadTag.lead_id == lead_id))
        session.execute(delete(Lead).where(Lead.id == lead_id))
        record_audit(
            session, tenant_id=actor.tenant_id, user_id=actor.user_id, action=ERASE_ACTION,
            entity="lead", entity_id=lead_id,
            details={"tags": tags, "enrolments": enrolments, "messages_anonymised": messages,
                     "addresses_suppressed": len(addresses), "suppressions_added": added,
                     "audit_entries_redacted": redacted},
        )
    return ErasureDone(lead_id, tags, enrolments, messages, added, redacted)
