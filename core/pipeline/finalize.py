"""The finalize node: the run's state becomes the enrolment's status and columns, written once."""

from __future__ import annotations

from typing import Any

from core.errors import LeadflowError
from core.lifecycle import after_send, ended_values
from core.models import EnrolmentStatus, MessageStatus
from core.pipeline.context import Ctx, PipelineContext, event
from core.pipeline.outcomes import BUDGET_REASON, has_replied
from core.pipeline.state import PipelineState
from core.pipeline.store import Outcome, persist_outcome


def outcome_values(state: PipelineState, ctx: PipelineContext) -> tuple[str | None, dict[str, Any]]:
    """The enrolment's final status and the columns to write with it."""
    status = state.get("status")
    reason = state.get("reason")
    now = ctx.now
    # The variant is written back so A/B results can be counted (it may have been assigned now).
    values: dict[str, Any] = {"status_reason": reason, "updated_at": now, "variant": ctx.enrolment.variant}
    if state.get("facts") is not None and not state.get("resume_approved"):
        values["research"] = state.get("facts")
    if status == EnrolmentStatus.awaiting_approval.value:
        values.update(
            draft_subject=state.get("draft_subject"),
            draft_body=state.get("draft_body"),
            guard_result=state.get("guard") or {},
            next_action_at=None,
            error=None,
        )
    elif status == EnrolmentStatus.sent.value:
        if not state.get("resume_approved"):
            values.update(
                draft_subject=state.get("draft_subject"),
                draft_body=state.get("draft_body"),
                guard_result=state.get("guard") or {},
            )
        # The follow-up (the same enrolment, next step, due after the step's delay), or done.
        values.update(after_send(ctx.campaign.steps, ctx.enrolment.step, sent_at=state.get("sent_at") or now,
                                 now=now, replied=has_replied(ctx), reason=reason))
        status = values.pop("status")
    elif status in (EnrolmentStatus.deferred.value, EnrolmentStatus.pending.value):
        values["next_action_at"] = (
            state.get("next_action_at") if status == EnrolmentStatus.deferred.value else None
        )
        if status == EnrolmentStatus.pending.value and (
            reason == BUDGET_REASON or state.get("pause_campaign")
        ):
            # The claim counted an attempt that never happened.
            values["attempts"] = max(ctx.enrolment.attempts - 1, 0)
    elif status in (
        EnrolmentStatus.failed.value, EnrolmentStatus.skipped.value, EnrolmentStatus.unknown.value
    ):
        values.update(ended_values(status, reason, now))
        del values["status"]
        if status == EnrolmentStatus.failed.value and state.get("draft_body"):
            values.update(
                draft_subject=state.get("draft_subject"),
                draft_body=state.get("draft_body"),
                guard_result=state.get("guard") or {},
            )
    return status, values


def finalize(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """Status, cost and tokens on the enrolment, the ledger row, events and model calls: one write."""
    ctx = runtime.context
    status, values = outcome_values(state, ctx)
    calls = state.get("llm_calls", [])
    final_event = event(
        ctx,
        "finalize",
        f"ended as {status}" if status else "ended without an outcome",
        status=status,
        cost_microusd=sum(c.cost_microusd for c in calls),
    )
    if ctx.mode != "run":
        return {"events": [final_event]}
    assert ctx.db is not None and ctx.enrolment.id is not None
    message_values: dict[str, Any] | None = None
    if state.get("message_status"):
        message_values = {"status": state["message_status"], "error": state.get("message_error")}
        if state["message_status"] == MessageStatus.sent.value:
            message_values.update(
                provider_message_id=state.get("provider_message_id"), sent_at=state.get("sent_at")
            )
    outcome = Outcome(
        tenant_id=ctx.tenant.id,
        campaign_id=ctx.campaign.id,
        campaign_lead_id=ctx.enrolment.id,
        lead_id=int(ctx.lead["id"]),
        lease_owner=ctx.lease_owner,
        trace_id=state["trace_id"],
        status=status,
        values=values,
        events=[*state.get("events", []), final_event],
        llm_calls=calls,
        message_id=state.get("message_id"),
        message_values=message_values,
        suppress=state.get("suppress"),
        pause_reason=state.get("pause_campaign"),
        provider_failure=state.get("provider_failure"),
        provider_ok=bool(state.get("provider_ok")),
        failure_threshold=ctx.runtime.settings.provider_failure_threshold,
    )
    try:
        persist_outcome(ctx.db, outcome)
    except LeadflowError as exc:
        return {"events": [event(ctx, "finalize", str(exc), level="error")]}
    return {"status": status, "events": [final_event]}
