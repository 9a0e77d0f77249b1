"""The pipeline's database work, kept to a few short transactions per lead.

A run reads its inputs once, writes the ledger row before the provider is called, and writes
the outcome, the events and the model calls in one transaction at the end. Every write of an
outcome is guarded by the lease (`lease_owner`), so a worker whose lease expired cannot
overwrite the work of the one that took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.compliance.suppression import suppress_address
from core.db import Database
from core.llm.calls import ModelCallRecord
from core.models import (
    Campaign,
    CampaignLead,
    Event,
    Lead,
    LLMCall,
    Message,
    MessageStatus,
    Suppression,
    SuppressionReason,
    Tenant,
    utcnow,
)
from core.pipeline.state import CampaignData, EnrolmentData, PipelineEvent, TenantData

NOT_REACHED = "never reached the provider"

LEAD_FIELDS = ("id", "first_name", "last_name", "phone", "email", "company", "title", "website",
               "industry", "city", "country", "time_zone", "notes", "custom_fields",
               "opted_out_at", "replied_at")


@dataclass(frozen=True)
class RunInputs:
    tenant: TenantData
    campaign: CampaignData
    lead: dict[str, Any]
    enrolment: EnrolmentData


def tenant_data(tenant: Tenant) -> TenantData:
    return TenantData(
        id=tenant.id, name=tenant.name, default_country=tenant.default_country,
        quiet_hours_start=tenant.quiet_hours_start, quiet_hours_end=tenant.quiet_hours_end,
        weekdays_only=tenant.weekdays_only, sms_sender_id=tenant.sms_sender_id,
        email_sender=tenant.email_sender, postal_address=tenant.postal_address,
        link_allow_list=tuple(tenant.link_allow_list or ()), playbook=dict(tenant.playbook or {}),
        price_overrides=dict(tenant.price_overrides or {}),
    )


def campaign_data(campaign: Campaign) -> CampaignData:
    return CampaignData(
        id=campaign.id, tenant_id=campaign.tenant_id, name=campaign.name, channel=campaign.channel,
        status=campaign.status, system_prompt=campaign.system_prompt,
        variants=list(campaign.variants or []), model=campaign.model,
        temperature=campaign.temperature, steps=list(campaign.steps or []),
        research_web=campaign.research_web, max_sms_segments=campaign.max_sms_segments,
        quiet_hours=campaign.quiet_hours, approval_required=campaign.approval_required,
    )


def lead_data(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in LEAD_FIELDS}


def address_of(lead: dict[str, Any], channel: str) -> str | None:
    return lead.get("phone") if channel == "sms" else lead.get("email")


def load_run_inputs(db: Database, campaign_lead_id: int, *, lease_owner: str) -> RunInputs | None:
    """Everything one run reads, in one read-only session; None when the lease is not ours.

    This is the runner's claimed unit of work, known by id only, so it is read in a system
    session; every join pins the rows to the enrolment's tenant.
    """
    with db.session(system=True, read_only=True) as session:
        row = session.execute(
            select(CampaignLead, Lead, Campaign, Tenant)
            .join(Lead, (Lead.id == CampaignLead.lead_id) & (Lead.tenant_id == CampaignLead.tenant_id))
            .join(Campaign, (Campaign.id == CampaignLead.campaign_id)
                  & (Campaign.tenant_id == CampaignLead.tenant_id))
            .join(Tenant, Tenant.id == CampaignLead.tenant_id)
            .where(CampaignLead.id == campaign_lead_id, CampaignLead.lease_owner == lease_owner)
        ).one_or_none()
        if row is None:
            return None
        enrolment, lead, campaign, tenant = row
        lead_values = lead_data(lead)
        address = address_of(lead_values, campaign.channel)
        suppression = None
        if address:
            suppression = session.scalar(
                select(Suppression.reason).where(
                    Suppression.tenant_id == tenant.id, Suppression.channel == campaign.channel,
                    Suppression.address == address,
                ).limit(1)
            )
        earlier: list[dict[str, Any]] = []
        if enrolment.step > 0:
            earlier = [
                {"step": m.step, "subject": m.subject, "body": m.body}
                for m in session.scalars(
                    select(Message).where(Message.campaign_lead_id == enrolment.id,
                                          Message.tenant_id == tenant.id,
                                          Message.step < enrolment.step)
                    .order_by(Message.step)
                )
            ]
        return RunInputs(
            tenant=tenant_data(tenant), campaign=campaign_data(campaign), lead=lead_values,
            enrolment=EnrolmentData(
                id=enrolment.id, step=enrolment.step, variant=enrolment.variant,
                attempts=enrolment.attempts, approved_at=enrolment.approved_at,
                draft_subject=enrolment.draft_subject, draft_body=enrolment.draft_body,
                research=list(enrolment.research or []), guard_result=dict(enrolment.guard_result or {}),
                replied_at=enrolment.replied_at, trace_id=enrolment.trace_id,
                earlier_messages=earlier, suppression=suppression,
            ),
        )


@dataclass(frozen=True)
class LedgerEntry:
    """The outcome of writing the ledger row: go ahead and send, or why not."""

    message_id: int | None
    proceed: bool
    existing_status: str | None = None
    suppressed: str | None = None
    lease_lost: bool = False


def write_ledger_row(
    db: Database, *, tenant_id: int, campaign_id: int, campaign_lead_id: int, lead_id: int,
    lease_owner: str, step: int, channel: str, to_address: str, subject: str | None, body: str,
    segments: int, provider: str, idempotency_key: str, now: datetime,
) -> LedgerEntry:
    """Commit the `sending` row (suppression and lease checked in the same transaction)."""
    with db.session(tenant_id=tenant_id) as session, session.begin():
        alive = session.execute(
            update(CampaignLead)
            .where(CampaignLead.id == campaign_lead_id, CampaignLead.lease_owner == lease_owner)
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not alive:
            return LedgerEntry(None, proceed=False, lease_lost=True)
        reason = session.scalar(
            select(Suppression.reason).where(Suppression.channel == channel,
                                             Suppression.address == to_address).limit(1)
        )
        if reason is not None:
            return LedgerEntry(None, proceed=False, suppressed=reason)
        values = {"tenant_id": tenant_id, "campaign_id": campaign_id, "campaign_lead_id": campaign_lead_id,
                      "lead_id": lead_id, "step": step, "channel": channel, "to_address": to_address,
                      "subject": subject, "body": body, "segments": segments, "provider": provider,
                      "status": MessageStatus.sending.value, "idempotency_key": idempotency_key,
                      "created_at": now}
        try:
            with session.begin_nested():
                message_id = session.execute(insert(Message).values(**values).returning(Message.id)).scalar_one()
            return LedgerEntry(message_id, proceed=True)
        except IntegrityError:
            existing = session.execute(
                select(Message.id, Message.status, Message.error)
                .where(Message.campaign_lead_id == campaign_lead_id, Message.step == step)
            ).one_or_none()
            if existing is None:
                raise
            message_id, status, error = existing
            if status == MessageStatus.failed.value and (error or "").startswith(NOT_REACHED):
                # The earlier attempt certainly never reached the provider: reuse its row.
                session.execute(
                    update(Message).where(Message.id == message_id)
                    .values(status=MessageStatus.sending.value, error=None, body=body, subject=subject,
                            segments=segments, provider=provider, to_address=to_address, created_at=now)
                    .execution_options(synchronize_session=False)
                )
                return LedgerEntry(message_id, proceed=True)
            return LedgerEntry(message_id, proceed=False, existing_status=status)


@dataclass(frozen=True)
class Outcome:
    """Everything the end of a run writes."""

    tenant_id: int
    campaign_id: int
    campaign_lead_id: int
    lead_id: int
    lease_owner: str
    trace_id: str
    status: str | None  # None: the lease was lost, the enrolment is not touched
    values: dict[str, Any]  # campaign_leads columns to set besides status and the lease
    events: list[PipelineEvent]
    llm_calls: list[Any]
    message_id: int | None = None
    message_values: dict[str, Any] | None = None
    suppress: dict[str, str] | None = None


def persist_outcome(db: Database, outcome: Outcome) -> bool:
    """One transaction: ledger update, enrolment (lease-checked), suppression, events, model calls.

    Returns False when the lease was no longer ours (the enrolment was left alone).
    """
    calls: list[ModelCallRecord] = outcome.llm_calls
    cost = sum(c.cost_microusd for c in calls)
    input_tokens = sum(c.input_tokens for c in calls)
    output_tokens = sum(c.output_tokens for c in calls)
    with db.session(tenant_id=outcome.tenant_id) as session, session.begin():
        if outcome.message_id is not None and outcome.message_values:
            # The ledger always records what the provider did, lease or no lease.
            session.execute(update(Message).where(Message.id == outcome.message_id)
                            .values(**outcome.message_values)
                            .execution_options(synchronize_session=False))
        owned = False
        if outcome.status is not None:
            values = dict(outcome.values)
            values.update(
                status=outcome.status, lease_owner=None, lease_expires_at=None,
                trace_id=outcome.trace_id,
                cost_microusd=CampaignLead.cost_microusd + cost,
                input_tokens=CampaignLead.input_tokens + input_tokens,
                output_tokens=CampaignLead.output_tokens + output_tokens,
            )
            owned = bool(session.execute(
                update(CampaignLead)
                .where(CampaignLead.id == outcome.campaign_lead_id,
                       CampaignLead.lease_owner == outcome.lease_owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount)
        if outcome.suppress:
            suppress_address(session, tenant_id=outcome.tenant_id, channel=outcome.suppress["channel"],
                             address=outcome.suppress["address"],
                             reason=SuppressionReason(outcome.suppress["reason"]),
                             source=outcome.suppress["source"])
        _insert_events(session, outcome, lease_lost=outcome.status is not None and not owned)
        if calls:
            session.execute(insert(LLMCall), [
                {"tenant_id": outcome.tenant_id, "campaign_id": outcome.campaign_id,
                 "campaign_lead_id": outcome.campaign_lead_id, "node": c.node, "provider": c.provider,
                 "model": c.model, "input_tokens": c.input_tokens, "output_tokens": c.output_tokens,
                 "cost_microusd": c.cost_microusd, "latency_ms": c.latency_ms, "error": c.error}
                for c in calls
            ])
    return owned or outcome.status is None


def _insert_events(session: Session, outcome: Outcome, *, lease_lost: bool) -> None:
    rows = [
        {"tenant_id": outcome.tenant_id, "campaign_id": outcome.campaign_id,
         "campaign_lead_id": outcome.campaign_lead_id, "trace_id": outcome.trace_id,
         "node": e["node"], "level": e["level"], "message": e["message"], "data": e["data"],
         "created_at": e["created_at"]}
        for e in outcome.events
    ]
    if lease_lost:
        last = outcome.events[-1]["created_at"] if outcome.events else utcnow()
        rows.append({"tenant_id": outcome.tenant_id, "campaign_id": outcome.campaign_id,
                     "campaign_lead_id": outcome.campaign_lead_id, "trace_id": outcome.trace_id,
                     "node": "finalize", "level": "warning",
                     "message": "the lease expired before the run ended: its outcome was not written",
                     "data": {"discarded_status": outcome.status}, "created_at": last})
    if rows:
        session.execute(insert(Event), rows)
