"""The send node: the rules again at send time, the `sending` ledger row committed, then the provider."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.channels.base import NotSent, OutgoingMessage
from core.channels.measured import measured_send
from core.errors import ProviderAccountRefused
from core.models import EnrolmentStatus, MessageStatus
from core.pipeline.context import Ctx, PipelineContext, event
from core.pipeline.ledger import NOT_REACHED, write_ledger_row
from core.pipeline.outcomes import (
    MAX_RUN_ATTEMPTS,
    PROVIDER_OK,
    account_refused,
    capped,
    contact_caps,
    deferred,
    ended,
    provider_failed,
    send_deferral,
)
from core.pipeline.state import PipelineState


def idempotency_key(campaign_lead_id: int, step: int) -> str:
    return f"cl{campaign_lead_id}-s{step}"


def send(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """Quiet hours and suppression again, the `sending` ledger row committed, then the provider.

    Every provider, the outbox included, is called the same way; finalize marks the row with
    what the provider did. A crash in between leaves the row `sending` for reconciliation.
    """
    ctx = runtime.context
    assert ctx.db is not None and ctx.enrolment.id is not None, "send runs only for an enrolment"
    resumed = bool(state.get("resume_approved"))
    body = (ctx.enrolment.draft_body if resumed else state.get("draft_body")) or ""
    subject = ctx.enrolment.draft_subject if resumed else state.get("draft_subject")
    if waits := send_deferral(ctx):
        return deferred(ctx, "send", waits)
    sender = ctx.runtime.sender(ctx.channel)
    ctx.runtime.gate.acquire_send(tenant_id=ctx.tenant.id, campaign_id=ctx.campaign.id, channel=ctx.channel)
    address = ctx.address or ""
    key = idempotency_key(ctx.enrolment.id, ctx.enrolment.step)
    segments = (state.get("guard") or ctx.enrolment.guard_result or {}).get("segments", 0)
    outgoing = OutgoingMessage(
        tenant_id=ctx.tenant.id,
        campaign_id=ctx.campaign.id,
        channel=ctx.channel,
        to_address=address,
        body=body,
        subject=subject,
        idempotency_key=key,
        from_address=ctx.tenant.email_sender if ctx.channel == "email" else ctx.tenant.sms_sender_id,
        lead_id=int(ctx.lead["id"]),
    )
    ledger = write_ledger_row(
        ctx.db,
        tenant_id=ctx.tenant.id,
        campaign_id=ctx.campaign.id,
        campaign_lead_id=ctx.enrolment.id,
        lead_id=int(ctx.lead["id"]),
        lease_owner=ctx.lease_owner,
        step=ctx.enrolment.step,
        channel=ctx.channel,
        to_address=address,
        subject=subject,
        body=body,
        segments=int(segments or 0),
        provider=sender.name,
        idempotency_key=key,
        now=ctx.now,
        caps=contact_caps(ctx.tenant),
    )
    if ledger.lease_lost:
        return {
            "status": None,
            "reason": "lease lost",
            "events": [event(ctx, "send", "the lease expired before sending: not sent", level="warning")],
        }
    if ledger.capped is not None:
        return deferred(ctx, "send", capped(ctx, ledger.capped))
    if ledger.suppressed:
        return ended(
            ctx,
            "send",
            EnrolmentStatus.skipped,
            f"the address was suppressed ({ledger.suppressed}) before sending",
        )
    if not ledger.proceed:
        if ledger.existing_status in (MessageStatus.sent.value, MessageStatus.delivered.value):
            return {
                "status": EnrolmentStatus.sent.value,
                "reason": "already sent",
                "sent_at": ctx.now,
                "events": [event(ctx, "send", "a message for this step was already sent: not sent again")],
            }
        return ended(
            ctx,
            "send",
            EnrolmentStatus.unknown,
            f"a message for this step is already in the ledger ({ledger.existing_status}): "
            "not sent again; a person must check it",
            level="warning",
            message_id=ledger.message_id,
        )
    base: dict[str, Any] = {"message_id": ledger.message_id}
    try:
        receipt = measured_send(sender, outgoing)
    except ProviderAccountRefused as exc:
        # Refused before the provider did anything with the message: the ledger row says "not
        # sent" (a failed row is reused when the lead is retried after the resume).
        base.update(message_status=MessageStatus.failed.value, message_error=f"not sent: {exc.reason}")
        return {**base, **account_refused(ctx, "send", exc.reason, message_id=ledger.message_id)}
    except NotSent as exc:
        error = exc.reason if exc.permanent or exc.opted_out else f"{NOT_REACHED}: {exc.reason}"
        base.update(message_status=MessageStatus.failed.value, message_error=error)
        if exc.opted_out:
            return {
                **base,
                **ended(ctx, "send", EnrolmentStatus.skipped, exc.reason, level="warning"),
                "suppress": {
                    "channel": ctx.channel,
                    "address": address,
                    "reason": "stop",
                    "source": f"{sender.name}: {exc.reason}",
                },
            }
        if exc.permanent:
            # The provider answered about this recipient (a bad number or address): it works.
            return {**base, **ended(ctx, "send", EnrolmentStatus.failed, exc.reason, level="error")}
        base.update(provider_failed(exc.reason))
        if ctx.enrolment.attempts >= MAX_RUN_ATTEMPTS:
            return {**base, **ended(ctx, "send", EnrolmentStatus.failed, exc.reason, level="error")}
        retry = ctx.now + timedelta(seconds=max(exc.retry_after or 0.0, 30.0))
        return {
            **base,
            **ended(
                ctx,
                "send",
                EnrolmentStatus.deferred,
                f"not sent: {exc.reason}; trying again later",
                level="warning",
                next_action_at=retry,
            ),
        }
    except Exception as exc:  # noqa: BLE001 - the provider's state is unknown: never re-send blindly
        reason = f"the provider call failed and may or may not have sent: {type(exc).__name__}: {exc}"
        base.update(
            message_status=MessageStatus.unknown.value, message_error=reason, **provider_failed(reason)
        )
        return {**base, **ended(ctx, "send", EnrolmentStatus.unknown, reason, level="error")}
    return {
        **_sent(ctx, sender.name, ledger.message_id, receipt.provider_message_id),
        "message_status": MessageStatus.sent.value,
        **PROVIDER_OK,
    }


def _sent(
    ctx: PipelineContext, provider: str, message_id: int | None, provider_message_id: str
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "provider_message_id": provider_message_id,
        "sent_at": ctx.now,
        "status": EnrolmentStatus.sent.value,
        "reason": None,
        "events": [event(ctx, "send", f"sent with {provider}", provider_message_id=provider_message_id)],
    }


