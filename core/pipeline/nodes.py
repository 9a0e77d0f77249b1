"""The pipeline's nodes: validate, research, compose, guard, approval, send, finalize.

Each node takes the state and the run's context (core.pipeline.graph.PipelineContext) and
returns the keys it changes plus one event for the per-lead log. A failure becomes data (an
outcome, a reason, an event), never an exception out of the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from sqlalchemy.orm import Session

from core.channels.base import NotSent, OutgoingMessage
from core.channels.outbox import OutboxSender
from core.compliance.frequency import CapHold, ContactCaps, cap_hold
from core.compliance.public_holidays import recipient_country
from core.compliance.quiet_hours import window_from_settings, zones_for_recipient
from core.compliance.send_rules import Deferral, window_deferral
from core.db import Database
from core.errors import LeadflowError, ProviderAccountRefused
from core.llm.calls import ModelCallFailed, ModelReply, call_model
from core.logs import get_logger
from core.models import LeadStatus, MessageStatus
from core.pipeline import prompts
from core.pipeline.drafting import (
    COMPOSE_MAX_OUTPUT_TOKENS,
    CONDENSE_MAX_OUTPUT_TOKENS,
    add_required_lines,
    compose_request,
    guard_rules_for,
)
from core.pipeline.guard import GuardRules, check_draft
from core.pipeline.limits import BudgetExceeded, CallTooLarge
from core.pipeline.research import (
    ResearchFetchError,
    condense_by_rules,
    lead_facts,
    playbook_facts,
    web_facts,
)
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import (
    CampaignData,
    EnrolmentData,
    Mode,
    PipelineEvent,
    PipelineState,
    TenantData,
)
from core.pipeline.store import (
    NOT_REACHED,
    HeldWrite,
    Outcome,
    address_of,
    persist_outcome,
    write_ledger_row,
)
from core.sender_verification import hold_campaign_for_unverified_sender
from core.tenants import in_zone, tenant_time_zone
from core.text import plural

log = get_logger(__name__)

MAX_COMPOSE_ATTEMPTS = 2  # one draft and one regeneration with the guard's feedback
MAX_RUN_ATTEMPTS = 5  # claims of one step before a transient failure becomes final
BUDGET_REASON = "budget cap reached"
# The provider keys of the state: the last provider call of a run failed, or succeeded.
PROVIDER_OK: dict[str, Any] = {"provider_ok": True, "provider_failure": None}


@dataclass
class PipelineContext:
    """The read-only inputs of one run, given to every node through LangGraph's runtime context."""

    runtime: PipelineRuntime
    db: Database | None
    mode: Mode
    lease_owner: str
    tenant: TenantData
    campaign: CampaignData
    lead: dict[str, Any]
    enrolment: EnrolmentData
    canary: str
    nonce: str
    # The outbox delivery's transaction, held open by send for finalize's outcome to join.
    held_write: HeldWrite | None = field(default=None)

    def take_held_write(self) -> HeldWrite | None:
        held, self.held_write = self.held_write, None
        return held

    def release_held_write(self) -> None:
        """Roll back a delivery whose outcome was never written (the run crashed in between)."""
        if (held := self.take_held_write()) is not None:
            held.release()

    @property
    def now(self) -> datetime:
        return self.runtime.now()

    @property
    def channel(self) -> str:
        return self.campaign.channel

    @property
    def address(self) -> str | None:
        return address_of(self.lead, self.campaign.channel)


Ctx = Runtime[PipelineContext]


def event(
    ctx: PipelineContext, node: str, message: str, *, level: str = "info", **data: Any
) -> PipelineEvent:
    return {"node": node, "level": level, "message": message, "data": data, "created_at": ctx.now}


def _ended(
    ctx: PipelineContext,
    node: str,
    status: LeadStatus,
    reason: str,
    *,
    level: str = "info",
    next_action_at: datetime | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "outcome": status.value,
        "reason": reason,
        "next_action_at": next_action_at,
        "events": [event(ctx, node, reason, level=level, status=status.value, **data)],
    }


def provider_failed(reason: str) -> dict[str, Any]:
    """The state keys of a provider call that failed: it counts towards the campaign's threshold."""
    return {"provider_ok": False, "provider_failure": reason}


def account_refused(ctx: PipelineContext, node: str, reason: str, **data: Any) -> dict[str, Any]:
    """A provider refused the account: the campaign pauses, the lead waits for the resume.

    The lead is left pending (its attempt given back): nothing was sent or written for it, and
    no lead of the campaign can succeed until a person fixes the account. A preview pauses
    nothing: it fails with the reason, which says what to fix.
    """
    if ctx.mode != "run":
        return _ended(ctx, node, LeadStatus.failed, reason, level="error", **data)
    return {
        **_ended(ctx, node, LeadStatus.pending, f"campaign paused: {reason}", level="error", **data),
        "pause_campaign": reason,
        "provider_ok": False,
        "provider_failure": None,  # not counted: the pause is already decided
    }


def send_deferral(ctx: PipelineContext, at: datetime | None = None) -> Deferral | None:
    """None when the recipient's send window is open (and it is no public holiday they are spared)
    at `at` (default now); else when it opens, and why not before."""
    return recipient_deferral(ctx.tenant, ctx.campaign.quiet_hours, ctx.lead, at or ctx.now)


def recipient_deferral(
    tenant: TenantData, quiet_hours: dict[str, Any] | None, lead: dict[str, Any], at: datetime
) -> Deferral | None:
    """`send_deferral` for any message to the lead (a person's answer too), under these settings."""
    window = window_from_settings(
        tenant.quiet_hours_start, tenant.quiet_hours_end, tenant.weekdays_only, quiet_hours
    )
    zones = zones_for_recipient(
        time_zone=lead.get("time_zone"),
        phone=lead.get("phone"),
        country=lead.get("country"),
        default_country=tenant.default_country,
    )
    holidays_of = None
    if tenant.skip_public_holidays:
        holidays_of = tenant.holiday_country or recipient_country(
            country=lead.get("country"), phone=lead.get("phone"), default_country=tenant.default_country
        )
    return window_deferral(window, zones, at, holiday_country=holidays_of)


def contact_caps(tenant: TenantData) -> ContactCaps:
    return ContactCaps(per_day=tenant.contact_cap_per_day, per_week=tenant.contact_cap_per_week)


def capped(ctx: PipelineContext, hold: CapHold) -> Deferral:
    """The lead is over a contact cap: due when the cap and the send window both allow."""
    later = send_deferral(ctx, hold.until)
    reason = f"contact cap reached ({hold.cap}, all campaigns together)"
    return Deferral(later.until if later else hold.until, reason)


def cap_deferral(ctx: PipelineContext) -> Deferral | None:
    """The contact caps as the ledger stands now (the send decides again under the lead's lock)."""
    caps = contact_caps(ctx.tenant)
    if not caps.active or ctx.db is None or ctx.enrolment.id is None:
        return None
    with ctx.db.session(tenant_id=ctx.tenant.id, read_only=True) as session:
        this_step = (ctx.enrolment.id, ctx.enrolment.step)
        hold = cap_hold(session, caps, lead_id=int(ctx.lead["id"]), now=ctx.now, excluding=this_step)
    return None if hold is None else capped(ctx, hold)


def deferred(ctx: PipelineContext, node: str, deferral: Deferral) -> dict[str, Any]:
    """The lead waits: the reason and when it is due again, in the tenant's own clock."""
    zone = tenant_time_zone(ctx.tenant.time_zone, ctx.tenant.default_country)
    return _ended(
        ctx,
        node,
        LeadStatus.deferred,
        f"{deferral.reason}; due again at {in_zone(deferral.until, zone)}",
        next_action_at=deferral.until,
    )


@lru_cache(maxsize=4096)
def _address_problem(channel: str, address: str | None) -> str | None:
    if not address:
        return f"the lead has no {'phone number' if channel == 'sms' else 'email address'}"
    if channel == "sms":
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(address, None)):
                return None
        except phonenumbers.NumberParseException:
            pass
        return f"'{address}' is not a valid phone number"
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return f"'{address}' is not a valid email address"
    return None


def _has_replied(ctx: PipelineContext) -> bool:
    return bool(ctx.lead.get("replied_at") or ctx.enrolment.replied_at)


# -- validate ---------------------------------------------------------------------------------


def validate(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """The lead is messageable on this channel now: address, suppression, opt-out, replies, hours."""
    ctx = runtime.context
    enrolment = ctx.enrolment
    if problem := _address_problem(ctx.channel, ctx.address):
        return _ended(ctx, "validate", LeadStatus.skipped, problem)
    if ctx.lead.get("opted_out_at"):
        return _ended(ctx, "validate", LeadStatus.skipped, "the lead opted out")
    if enrolment.suppression:
        return _ended(
            ctx,
            "validate",
            LeadStatus.skipped,
            f"the address is on the suppression list ({enrolment.suppression})",
        )
    if enrolment.step > 0 and _has_replied(ctx):
        return _ended(ctx, "validate", LeadStatus.skipped, "the lead replied: the sequence stopped")
    if ctx.channel == "email" and not (ctx.tenant.postal_address or "").strip():
        return _ended(
            ctx,
            "validate",
            LeadStatus.failed,
            "the tenant has no postal address, which every marketing email must carry; "
            "set it in the tenant settings",
            level="error",
        )
    if ctx.channel == "email" and ctx.mode == "run" and ctx.db is not None:
        # An unverified From address pauses the campaign with the reason; the lead waits.
        provider = ctx.runtime.sender("email").name
        unverified = hold_campaign_for_unverified_sender(
            ctx.db, ctx.tenant.id, ctx.campaign.id, ctx.tenant.email_sender, provider=provider
        )
        if unverified:
            return _ended(ctx, "validate", LeadStatus.pending, unverified, level="warning")
    if ctx.mode == "run" and (waits := send_deferral(ctx) or cap_deferral(ctx)):
        # Deferred before any spend: the draft is written when the lead may be messaged.
        return deferred(ctx, "validate", waits)
    resume = bool(ctx.mode == "run" and enrolment.approved_at and enrolment.draft_body)
    return {
        "resume_approved": resume,
        "events": [
            event(
                ctx,
                "validate",
                "approved draft: resuming at send" if resume else "the lead is messageable",
                step=enrolment.step,
            )
        ],
    }


# -- research ---------------------------------------------------------------------------------


def _model_call(ctx: PipelineContext, node: str, messages: list[BaseMessage], max_output: int) -> ModelReply:
    runtime, campaign = ctx.runtime, ctx.campaign
    return call_model(
        runtime.chat_model(campaign.model, campaign.temperature),
        messages,
        node=node,
        provider=runtime.provider,
        model=campaign.model,
        price=runtime.price(campaign.model, ctx.tenant.price_overrides),
        gate=runtime.gate,
        tenant_id=ctx.tenant.id,
        campaign_id=campaign.id,
        max_retries=runtime.settings.llm_max_retries,
        max_output_tokens=max_output,
    )


def _condensed_by_model(text: str, known: list[dict[str, str]]) -> list[dict[str, str]] | None:
    match = re.search(r"\[.*\]", text, flags=re.DOTALL)
    try:
        items = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        return None
    if not isinstance(items, list):
        return None
    sources = {f["source"] for f in known}
    # A fact whose source the model invented is dropped: every fact must say where it came from.
    kept = [
        {"fact": str(i["fact"])[:240], "source": str(i["source"])}
        for i in items
        if isinstance(i, dict) and i.get("fact") and i.get("source") in sources
    ]
    return kept or None


def research(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """Facts with sources: the lead's fields, the playbook and, when enabled, the company page."""
    ctx = runtime.context
    events: list[PipelineEvent] = []
    facts = lead_facts(ctx.lead) + playbook_facts(ctx.tenant.playbook, ctx.lead.get("industry"))
    if ctx.campaign.research_web and ctx.lead.get("website"):
        try:
            facts = web_facts(str(ctx.lead["website"]), ctx.runtime.settings) + facts
        except ResearchFetchError as exc:
            events.append(event(ctx, "research", f"company page not used: {exc}", level="warning"))
        except Exception as exc:  # a page that fails to load is a missing fact, never a crashed run
            log.exception("research_fetch_failed")
            why = f"unexpected {type(exc).__name__}"
            events.append(event(ctx, "research", f"company page not used: {why}", level="warning"))
    calls = []
    provider: dict[str, Any] = {}
    condensed = condense_by_rules(facts)
    if ctx.runtime.provider != "offline" and len(facts) > 2:
        messages: list[BaseMessage] = [
            SystemMessage(
                prompts.CONDENSE_SYSTEM.format(
                    task=prompts.TASK_CONDENSE_FACTS,
                    research_block=prompts.BLOCK_RESEARCH,
                    max_facts=5,
                    canary=ctx.canary,
                )
            ),
            HumanMessage(prompts.data_block(prompts.BLOCK_RESEARCH, ctx.nonce, facts)),
        ]
        try:
            reply = _model_call(ctx, "research", messages, CONDENSE_MAX_OUTPUT_TOKENS)
            calls.append(reply.record)
            condensed = _condensed_by_model(reply.text, facts) or condensed
            provider.update(PROVIDER_OK)
        except CallTooLarge as exc:  # compose, with the facts condensed by rules, may still fit
            events.append(event(ctx, "research", f"facts condensed by rules: {exc}", level="warning"))
        except BudgetExceeded:
            if ctx.mode == "preview":
                raise  # a preview is refused with the reason, not deferred
            return {
                **_ended(ctx, "research", LeadStatus.pending, BUDGET_REASON, level="warning"),
                "facts": condensed,
            }
        except ModelCallFailed as exc:
            calls.append(exc.record)
            if exc.account:
                paused = account_refused(ctx, "research", exc.reason)
                return {**paused, "events": events + paused["events"], "facts": condensed, "llm_calls": calls}
            provider.update(provider_failed(exc.reason))
            events.append(event(ctx, "research", f"facts condensed by rules: {exc.reason}", level="warning"))
    events.append(
        event(ctx, "research", plural(len(condensed), "fact"),
              sources=sorted({f["source"] for f in condensed}))
    )
    return {"facts": condensed, "events": events, "llm_calls": calls, **provider}


# -- compose ----------------------------------------------------------------------------------


def compose_messages(
    ctx: PipelineContext, facts: list[dict[str, str]], feedback: str | None
) -> list[BaseMessage]:
    system, request = compose_request(
        ctx.campaign,
        ctx.lead,
        step=ctx.enrolment.step,
        variant=ctx.enrolment.variant,
        earlier_messages=ctx.enrolment.earlier_messages,
        facts=facts,
        feedback=feedback,
        canary=ctx.canary,
        nonce=ctx.nonce,
    )
    return [SystemMessage(system), HumanMessage(request)]


def split_email(text: str) -> tuple[str | None, str]:
    match = re.match(r"\s*subject:\s*(.+?)\n(.*)", text, flags=re.IGNORECASE | re.DOTALL)
    if match is None:
        return None, text.strip()
    return match.group(1).strip(), match.group(2).strip()


def with_required_lines(ctx: PipelineContext, body: str) -> str:
    """The opt-out line (SMS first touch) or the unsubscribe line and postal address (email)."""
    return add_required_lines(body, channel=ctx.channel, step=ctx.enrolment.step,
                              postal_address=ctx.tenant.postal_address)


def _model_failure(ctx: PipelineContext, node: str, exc: ModelCallFailed) -> dict[str, Any]:
    if exc.account:
        return account_refused(ctx, node, exc.reason)
    if exc.permanent or ctx.enrolment.attempts >= MAX_RUN_ATTEMPTS:
        return {
            **_ended(ctx, node, LeadStatus.failed, exc.reason, level="error"),
            **provider_failed(exc.reason),
        }
    delay = max(exc.retry_after or 0.0, 30.0 * 2 ** max(ctx.enrolment.attempts - 1, 0))
    return {
        **_ended(
            ctx,
            node,
            LeadStatus.deferred,
            f"{exc.reason}; trying again later",
            level="warning",
            next_action_at=ctx.now + timedelta(seconds=min(delay, 3600)),
        ),
        **provider_failed(exc.reason),
    }


def compose(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """The model writes the draft from the campaign prompt, the facts and the lead's data block."""
    ctx = runtime.context
    attempts = state.get("compose_attempts", 0) + 1
    messages = compose_messages(ctx, state.get("facts", []), state.get("feedback"))
    try:
        reply = _model_call(ctx, "compose", messages, COMPOSE_MAX_OUTPUT_TOKENS.get(ctx.channel, 300))
    except CallTooLarge as exc:  # no budget left or released will ever fit it: this lead alone fails
        failed = _ended(ctx, "compose", LeadStatus.failed, str(exc), level="error")
        return {**failed, "compose_attempts": attempts}
    except BudgetExceeded:
        if ctx.mode == "preview":
            raise  # a preview is refused with the reason, not deferred
        return {
            **_ended(ctx, "compose", LeadStatus.pending, BUDGET_REASON, level="warning"),
            "compose_attempts": attempts,
        }
    except ModelCallFailed as exc:
        return {
            **_model_failure(ctx, "compose", exc),
            "llm_calls": [exc.record],
            "compose_attempts": attempts,
        }
    subject, body = split_email(reply.text) if ctx.channel == "email" else (None, reply.text.strip())
    body = with_required_lines(ctx, body)
    record = reply.record
    return {
        "draft_subject": subject,
        "draft_body": body,
        "compose_attempts": attempts,
        "feedback": None,
        "llm_calls": [record],
        **PROVIDER_OK,
        "events": [
            event(
                ctx,
                "compose",
                f"draft {attempts} written",
                model=record.model,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cost_microusd=record.cost_microusd,
                latency_ms=record.latency_ms,
            )
        ],
    }


# -- guard ------------------------------------------------------------------------------------


def guard_rules(ctx: PipelineContext) -> GuardRules:
    return guard_rules_for(
        ctx.runtime.settings,
        ctx.tenant,
        ctx.campaign,
        ctx.lead,
        step=ctx.enrolment.step,
        variant=ctx.enrolment.variant,
        canary=ctx.canary,
    )


def guard(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """Plain-code checks; a failed draft goes back to compose once with the problems as feedback."""
    ctx = runtime.context
    result = check_draft(state.get("draft_body") or "", state.get("draft_subject"), guard_rules(ctx))
    update: dict[str, Any] = {
        "guard": result.as_dict(),
        "draft_body": result.body,
        "draft_subject": result.subject,
    }
    if result.passed:
        return {**update, "events": [event(ctx, "guard", "the draft passed", **result.as_dict())]}
    problems = "; ".join(result.problems)
    if state.get("compose_attempts", 0) < MAX_COMPOSE_ATTEMPTS and not state.get("outcome"):
        return {
            **update,
            "feedback": problems,
            "events": [
                event(
                    ctx,
                    "guard",
                    f"draft rejected, regenerating: {problems}",
                    level="warning",
                    **result.as_dict(),
                )
            ],
        }
    return {
        **update,
        **_ended(
            ctx,
            "guard",
            LeadStatus.failed,
            f"the draft failed the guard twice: {problems}",
            level="error",
            problems=result.problems,
        ),
    }


# -- approval ---------------------------------------------------------------------------------


def approval(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """With approval required, the draft waits for a reviewer; it is persisted by finalize."""
    ctx = runtime.context
    if ctx.campaign.approval_required and not state.get("resume_approved"):
        return _ended(ctx, "approval", LeadStatus.awaiting_approval, "waiting for a reviewer")
    return {
        "events": [
            event(
                ctx,
                "approval",
                "no review needed" if not ctx.campaign.approval_required else "approved by a reviewer",
            )
        ]
    }


# -- send -------------------------------------------------------------------------------------


def idempotency_key(campaign_lead_id: int, step: int) -> str:
    return f"cl{campaign_lead_id}-s{step}"


def _outbox_delivery(outbox: OutboxSender, message: OutgoingMessage) -> Callable[[Session], str]:
    def deliver(session: Session) -> str:
        return outbox.record(message, session=session).provider_message_id

    return deliver


def send(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """Quiet hours and suppression again, the `sending` ledger row committed, then the provider.

    The outbox is written in the ledger row's own transaction instead (see below).
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
    )
    # The outbox is a table of this database: it is written in the ledger row's transaction,
    # with the row marked `sent` (both or neither). A provider outside the database is called
    # only after the `sending` row is committed.
    deliver = _outbox_delivery(sender, outgoing) if isinstance(sender, OutboxSender) else None
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
        deliver=deliver,
        caps=contact_caps(ctx.tenant),
    )
    if ledger.lease_lost:
        return {
            "outcome": None,
            "reason": "lease lost",
            "events": [event(ctx, "send", "the lease expired before sending: not sent", level="warning")],
        }
    if ledger.capped is not None:
        return deferred(ctx, "send", capped(ctx, ledger.capped))
    if ledger.suppressed:
        return _ended(
            ctx,
            "send",
            LeadStatus.skipped,
            f"the address was suppressed ({ledger.suppressed}) before sending",
        )
    if not ledger.proceed:
        if ledger.existing_status in (MessageStatus.sent.value, MessageStatus.delivered.value):
            return {
                "outcome": LeadStatus.sent.value,
                "reason": "already sent",
                "sent_at": ctx.now,
                "events": [event(ctx, "send", "a message for this step was already sent: not sent again")],
            }
        return _ended(
            ctx,
            "send",
            LeadStatus.unknown,
            f"a message for this step is already in the ledger ({ledger.existing_status}): "
            "not sent again; a person must check it",
            level="warning",
            message_id=ledger.message_id,
        )
    if ledger.provider_message_id is not None:
        # Delivered with its ledger row already `sent`, in a transaction still open: finalize
        # writes the outcome in it and commits the three together (see store.write_ledger_row).
        ctx.held_write = ledger.held
        return _sent(ctx, sender.name, ledger.message_id, ledger.provider_message_id)
    base: dict[str, Any] = {"message_id": ledger.message_id}
    try:
        receipt = sender.send(outgoing, db=ctx.db)
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
                **_ended(ctx, "send", LeadStatus.skipped, exc.reason, level="warning"),
                "suppress": {
                    "channel": ctx.channel,
                    "address": address,
                    "reason": "stop",
                    "source": f"{sender.name}: {exc.reason}",
                },
            }
        if exc.permanent:
            # The provider answered about this recipient (a bad number or address): it works.
            return {**base, **_ended(ctx, "send", LeadStatus.failed, exc.reason, level="error")}
        base.update(provider_failed(exc.reason))
        if ctx.enrolment.attempts >= MAX_RUN_ATTEMPTS:
            return {**base, **_ended(ctx, "send", LeadStatus.failed, exc.reason, level="error")}
        retry = ctx.now + timedelta(seconds=max(exc.retry_after or 0.0, 30.0))
        return {
            **base,
            **_ended(
                ctx,
                "send",
                LeadStatus.deferred,
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
        return {**base, **_ended(ctx, "send", LeadStatus.unknown, reason, level="error")}
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
        "outcome": LeadStatus.sent.value,
        "reason": None,
        "events": [event(ctx, "send", f"sent with {provider}", provider_message_id=provider_message_id)],
    }


# -- finalize ---------------------------------------------------------------------------------


def _next_step_delay(campaign: CampaignData, next_step: int) -> timedelta | None:
    if next_step >= len(campaign.steps):
        return None
    step = campaign.steps[next_step]
    hours = float(step.get("delay_hours", 0)) if isinstance(step, dict) else 0.0
    return timedelta(hours=hours)


def outcome_values(state: PipelineState, ctx: PipelineContext) -> tuple[str | None, dict[str, Any]]:
    """The enrolment's final status and the columns to write with it."""
    status = state.get("outcome")
    reason = state.get("reason")
    now = ctx.now
    # The variant is written back so A/B results can be counted (it may have been assigned now).
    values: dict[str, Any] = {"status_reason": reason, "updated_at": now, "variant": ctx.enrolment.variant}
    if state.get("facts") is not None and not state.get("resume_approved"):
        values["research"] = state.get("facts")
    if status == LeadStatus.awaiting_approval.value:
        values.update(
            draft_subject=state.get("draft_subject"),
            draft_body=state.get("draft_body"),
            guard_result=state.get("guard") or {},
            next_action_at=None,
            error=None,
        )
    elif status == LeadStatus.sent.value:
        sent_at = state.get("sent_at") or now
        delay = _next_step_delay(ctx.campaign, ctx.enrolment.step + 1)
        if not state.get("resume_approved"):
            values.update(
                draft_subject=state.get("draft_subject"),
                draft_body=state.get("draft_body"),
                guard_result=state.get("guard") or {},
            )
        values.update(approved_at=None, error=None)
        if delay is not None and not _has_replied(ctx):
            # The follow-up: the same enrolment, next step, due after the step's delay.
            status = LeadStatus.pending.value
            values.update(
                step=ctx.enrolment.step + 1,
                next_action_at=sent_at + delay,
                attempts=0,
                status_reason=f"follow-up {ctx.enrolment.step + 1} due",
            )
        else:
            values.update(next_action_at=None, completed_at=now)
    elif status in (LeadStatus.deferred.value, LeadStatus.pending.value):
        values["next_action_at"] = (
            state.get("next_action_at") if status == LeadStatus.deferred.value else None
        )
        if status == LeadStatus.pending.value and (reason == BUDGET_REASON or state.get("pause_campaign")):
            # The claim counted an attempt that never happened.
            values["attempts"] = max(ctx.enrolment.attempts - 1, 0)
    elif status in (LeadStatus.failed.value, LeadStatus.skipped.value, LeadStatus.unknown.value):
        values.update(next_action_at=None, completed_at=now)
        if status != LeadStatus.skipped.value:
            values["error"] = reason
        if status == LeadStatus.failed.value and state.get("draft_body"):
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
    held = ctx.take_held_write()
    try:
        persist_outcome(ctx.db, outcome, held=held)
    except LeadflowError as exc:
        failed = event(ctx, "finalize", str(exc), level="error")
        # A held outbox delivery was rolled back with the outcome: nothing was sent.
        return {"outcome": None, "events": [failed]} if held is not None else {"events": [failed]}
    return {"outcome": status, "events": [final_event]}
