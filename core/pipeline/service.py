"""The pipeline's service: run one enrolment, reconcile a ledger row, preview a draft.

The job runner calls `process_campaign_lead` for each enrolment it has claimed and
`reconcile_sending_message` for ledger rows a dead worker left `sending`; the campaign editor
calls `preview` (the cost estimate, which calls no model, is core.pipeline.estimate).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import tracing
from core.channels.outbox import OutboxSender
from core.compliance.suppression import suppression_reason
from core.db import Database
from core.errors import NotFound, ValidationError
from core.gate import NO_LIMITS, BudgetExceeded, CallGate
from core.lifecycle import after_send, ended_values, send_not_reached_values, send_unknown_values
from core.llm.records import ModelCallRecord
from core.logs import bound, get_logger
from core.models import (
    FINAL_ENROLMENT_STATUSES,
    Campaign,
    CampaignLead,
    EnrolmentStatus,
    Event,
    Lead,
    LLMCall,
    Message,
    MessageStatus,
    Tenant,
)
from core.permissions import Actor, Permission
from core.pipeline.context import PipelineContext, event
from core.pipeline.drafting import assign_variant, run_secrets, variant_names
from core.pipeline.graph import compiled_pipeline
from core.pipeline.ledger import NOT_REACHED
from core.pipeline.run_inputs import address_of, lead_data, load_run_inputs, tenant_data
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import CampaignData, EnrolmentData, PipelineState
from core.pipeline.store import Outcome, is_transient_database_error, persist_outcome
from core.webhooks.events import EventType, emit, message_data

__all__ = [
    "LEASE_LOST",
    "RETRY_AFTER_LEASE",
    "NO_LIMITS",
    "BudgetExceeded",
    "CallGate",
    "PipelineRuntime",
    "PreviewResult",
    "preview",
    "process_campaign_lead",
    "reconcile_sending_message",
]

LEASE_LOST = "lease_lost"  # returned when the enrolment is no longer leased to the caller
# Returned when the database failed under the run (a lost connection, a failover, a lock): the
# lead is left leased and untouched, and is retried when its lease expires.
RETRY_AFTER_LEASE = "retry_after_lease"
RUN_OUTPUT_KEYS = ["status"]  # what process_campaign_lead reads of a run's final state
log = get_logger(__name__)


def process_campaign_lead(
    db: Database, runtime: PipelineRuntime, campaign_lead_id: int, *, lease_owner: str
) -> str:
    """Run the graph for the enrolment's current step and return its new status.

    The runner has claimed the row (status in_progress, our lease). Every outcome write checks
    the lease; `LEASE_LOST` is returned when the row is no longer ours, `RETRY_AFTER_LEASE` when
    the database failed under the run (nothing is written: the lease expires and recovery puts
    the lead back, reconciling a ledger row the run may have left `sending`).
    """
    inputs = load_run_inputs(db, campaign_lead_id, lease_owner=lease_owner)
    if inputs is None:
        return LEASE_LOST
    enrolment = inputs.enrolment
    names = variant_names(inputs.campaign.variants)
    if names and enrolment.variant not in names:
        enrolment = replace(
            enrolment,
            variant=assign_variant(int(inputs.lead["id"]), inputs.campaign.variants),
        )
    canary, nonce = run_secrets()
    trace_id = tracing.new_trace_id()
    context = PipelineContext(
        runtime=runtime,
        db=db,
        mode="run",
        lease_owner=lease_owner,
        tenant=inputs.tenant,
        campaign=inputs.campaign,
        lead=inputs.lead,
        enrolment=enrolment,
        canary=canary,
        nonce=nonce,
    )
    with (
        bound(
            tenant_id=inputs.tenant.id,
            campaign_id=inputs.campaign.id,
            campaign_lead_id=campaign_lead_id,
            trace_id=trace_id,
        ),
        tracing.run_span("outreach.run", trace_id, _run_attributes(context)) as span,
    ):
        try:
            # Only the status is read back: asking for the whole state makes LangGraph copy
            # every channel out after every step.
            final = cast(
                PipelineState,
                compiled_pipeline().invoke(
                    {"trace_id": trace_id, "events": [], "llm_calls": []},
                    context=context,
                    output_keys=RUN_OUTPUT_KEYS,
                ),
            )
        except Exception as exc:
            tracing.failed(span, type(exc).__name__, f"{type(exc).__name__}: {exc}")
            if is_transient_database_error(exc):
                # Not the lead's fault, and not a provider's: the database is likely still away,
                # so nothing is written now. The lead is retried after its lease.
                log.warning("run_interrupted_by_database", error=f"{type(exc).__name__}: {exc}")
                return RETRY_AFTER_LEASE
            # A bug, not a lead's problem: record it on the lead instead of looping on it.
            log.exception("pipeline run crashed")
            reason = f"internal error: {type(exc).__name__}: {exc}"
            values = {**ended_values(EnrolmentStatus.failed, reason, runtime.now()), "status_reason": reason}
            persist_outcome(
                db,
                Outcome(
                    tenant_id=inputs.tenant.id,
                    campaign_id=inputs.campaign.id,
                    campaign_lead_id=campaign_lead_id,
                    lead_id=int(inputs.lead["id"]),
                    lease_owner=lease_owner,
                    trace_id=trace_id,
                    status=values.pop("status"),
                    values=values,
                    events=[event(context, "finalize", reason, level="error")],
                    llm_calls=[],
                ),
            )
            return EnrolmentStatus.failed.value
        status = final.get("status") or LEASE_LOST
        if span is not None:
            span.set_attribute("leadflow.status", status)
    return status


def _run_attributes(context: PipelineContext) -> dict[str, Any]:
    """The run span's attributes; none when not traced."""
    if not tracing.active():
        return {}
    attributes: dict[str, Any] = {
        "leadflow.tenant_id": context.tenant.id,
        "leadflow.campaign_id": context.campaign.id,
        "leadflow.step": context.enrolment.step,
        "leadflow.channel": context.channel,
        "leadflow.mode": context.mode,
    }
    if context.enrolment.id is not None:  # a preview has no enrolment
        attributes["leadflow.campaign_lead_id"] = context.enrolment.id
    return attributes


# -- reconciliation ---------------------------------------------------------------------------


def reconcile_sending_message(db: Database, runtime: PipelineRuntime, message_id: int) -> str:
    """Decide a ledger row left `sending` by a dead worker; returns the message's new status.

    Outbox: exactly (its own record says whether it was sent). Twilio and SMTP cannot be asked:
    the message and its enrolment become `unknown`, for a person to check; never re-sent blindly.
    """
    with db.session(system=True, read_only=True) as session:
        tenant_id = session.scalar(select(Message.tenant_id).where(Message.id == message_id))
    if tenant_id is None:
        raise NotFound(f"no message {message_id}")
    now = runtime.now()
    with db.session(tenant_id=tenant_id) as session, session.begin():
        message = session.get(Message, message_id, with_for_update=not db.is_sqlite)
        if message is None or message.status != MessageStatus.sending.value:
            return message.status if message else MessageStatus.failed.value
        # The outbox can always be asked, even when the channel has moved to another provider since.
        outbox = message.provider == OutboxSender.name
        sender = OutboxSender(db) if outbox else runtime.senders.get(message.channel)
        was_sent = (
            sender.was_sent(message.idempotency_key, tenant_id=tenant_id)
            if sender is not None and sender.name == message.provider
            else None
        )
        enrolment = session.get(CampaignLead, message.campaign_lead_id)
        campaign = session.get(Campaign, message.campaign_id)
        lead = session.get(Lead, message.lead_id)
        assert enrolment is not None and campaign is not None and lead is not None
        if was_sent:
            message.status, message.sent_at = MessageStatus.sent.value, now
            message.provider_message_id = message.provider_message_id or f"{message.provider}-reconciled"
            values = after_send(campaign.steps, message.step, sent_at=now, now=now,
                                replied=bool(lead.replied_at or enrolment.replied_at))
            text = "reconciled: the provider has the message, it was sent"
            session.flush()
            emit(session, tenant_id, EventType.message_sent, message_data(session, message.id))
        elif was_sent is False:
            message.status, message.error = MessageStatus.failed.value, NOT_REACHED
            values = send_not_reached_values(
                now, "the send was interrupted before the provider got it; retrying"
            )
            text = f"reconciled: {NOT_REACHED}; the lead is due again"
        else:
            message.status = MessageStatus.unknown.value
            message.error = "the worker stopped while the provider was being called; check with the provider"
            values = send_unknown_values(now, message.error)
            text = "reconciled: the outcome is unknown; a person must check it"
        final = {s.value for s in FINAL_ENROLMENT_STATUSES}
        if enrolment.step == message.step and enrolment.status not in final:
            session.execute(
                update(CampaignLead)
                .where(CampaignLead.id == enrolment.id, CampaignLead.step == message.step)
                .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
                .execution_options(synchronize_session=False)
            )
        session.add(
            Event(
                tenant_id=tenant_id,
                campaign_id=message.campaign_id,
                campaign_lead_id=message.campaign_lead_id,
                trace_id=enrolment.trace_id,
                node="reconcile",
                level="warning",
                message=text,
                data={"message_id": message.id, "provider": message.provider},
                created_at=now,
            )
        )
        return message.status


# -- preview ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewResult:
    """A draft for one lead, as the campaign editor shows it; nothing is sent or enrolled."""

    status: str  # "ready", or the status the lead would end in (skipped, failed, ...)
    reason: str | None
    facts: list[dict[str, str]]
    subject: str | None
    body: str | None
    segments: int
    encoding: str
    guard_passed: bool
    problems: list[str]
    cost_microusd: int
    input_tokens: int
    output_tokens: int
    variant: str
    events: list[dict[str, Any]] = field(default_factory=list)


def _preview_step_and_variant(campaign: Campaign, step: int, variant: str | None) -> None:
    """Refuse a step or a variant the campaign does not have (the picker offers only those)."""
    steps = len(campaign.steps) or 1
    if not 0 <= step < steps:
        raise ValidationError(f"campaign '{campaign.name}' has no step {step + 1}: it has {steps}")
    names = variant_names(campaign.variants)
    if variant is not None and variant not in (names or ["A"]):
        raise ValidationError(
            f"campaign '{campaign.name}' has no variant '{variant}'"
            + (f": it has {', '.join(names)}" if names else "")
        )


def _load_for_preview(session: Session, tenant_id: int, campaign_id: int, lead_id: int) -> tuple[Any, ...]:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}")
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    suppression = suppression_reason(
        session, channel=campaign.channel, address=address_of(lead_data(lead), campaign.channel)
    )
    # An enrolled lead is shown the variant it was given; any other the one it would be given.
    enrolled = session.scalar(
        select(CampaignLead.variant).where(
            CampaignLead.campaign_id == campaign_id, CampaignLead.lead_id == lead_id
        )
    )
    names = variant_names(campaign.variants)
    variant = enrolled if enrolled in names else assign_variant(lead_id, campaign.variants)
    return tenant, campaign, lead, suppression, variant


def _record_calls(session: Session, tenant_id: int, campaign_id: int, calls: list[ModelCallRecord]) -> None:
    for c in calls:
        session.add(
            LLMCall(
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                campaign_lead_id=None,
                node=f"preview:{c.node}",
                provider=c.provider,
                model=c.model,
                input_tokens=c.input_tokens,
                output_tokens=c.output_tokens,
                cost_microusd=c.cost_microusd,
                latency_ms=c.latency_ms,
                error=c.error,
            )
        )


def preview(
    db: Database, runtime: PipelineRuntime, actor: Actor, campaign_id: int, lead_id: int,
    *, step: int = 0, variant: str | None = None,
) -> PreviewResult:
    """validate -> research -> compose -> guard for one lead; the model calls are recorded as spend.

    Any step (0 is the first touch) and any A/B variant may be previewed; without a variant the
    lead's own (the one it was or would be given) is used.

    Its model calls pass the runtime's gate like a run's (the dashboard gives it the shared one,
    core.pipeline.runtime.gated_runtime): the rate limits, the campaign's cap and the tenant's monthly
    budget. A budget that cannot hold the call refuses the preview with BudgetExceeded.
    """
    actor.require(Permission.edit_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        tenant, campaign, lead, suppression, assigned = _load_for_preview(
            session, actor.tenant_id, campaign_id, lead_id
        )
        _preview_step_and_variant(campaign, step, variant)
        variant = variant or assigned
        tenant_view, lead_view = tenant_data(tenant), lead_data(lead)
        campaign_view = CampaignData.of(campaign)
    canary, nonce = run_secrets()
    context = PipelineContext(
        runtime=runtime,
        db=db,
        mode="preview",
        lease_owner="",
        tenant=tenant_view,
        campaign=campaign_view,
        lead=lead_view,
        enrolment=EnrolmentData(id=None, step=step, variant=variant, suppression=suppression),
        canary=canary,
        nonce=nonce,
    )
    # A preview belongs to the request that asked for it: its spans join that trace.
    with tracing.span("outreach.preview", _run_attributes(context)):
        trace_id = tracing.current_trace_id() or tracing.new_trace_id()
        start: PipelineState = {"trace_id": trace_id, "preview": True, "events": [], "llm_calls": []}
        try:
            final = cast(PipelineState, compiled_pipeline().invoke(start, context=context))
        except BudgetExceeded as exc:  # the gate refused the model call: say why, nothing was spent
            raise BudgetExceeded(f"The preview was not run: the {exc}") from exc
    calls = final.get("llm_calls", [])
    if calls:
        with db.session(tenant_id=actor.tenant_id) as session, session.begin():
            _record_calls(session, actor.tenant_id, campaign_id, calls)
    guard = final.get("guard") or {}
    return PreviewResult(
        status=final.get("status") or "ready",
        reason=final.get("reason"),
        facts=final.get("facts", []),
        subject=final.get("draft_subject"),
        body=final.get("draft_body"),
        segments=int(guard.get("segments", 0)),
        encoding=str(guard.get("encoding", "")),
        guard_passed=bool(guard.get("passed")),
        problems=list(guard.get("problems", [])),
        cost_microusd=sum(c.cost_microusd for c in calls),
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        variant=variant,
        events=[{k: v for k, v in e.items() if k != "created_at"} for e in final.get("events", [])],
    )
