"""The pipeline's nodes up to the send: validate, research, compose, guard, approval.

Each node takes the state and the run's context (core.pipeline.context.PipelineContext) and
returns the keys it changes plus one event for the per-lead log. A failure becomes data (a
status, a reason, an event), never an exception out of the run. The send and finalize nodes
live in core.pipeline.send and core.pipeline.finalize.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from core.gate import BudgetExceeded, CallTooLarge
from core.llm import prompts
from core.llm.calls import ModelCallFailed, ModelReply
from core.logs import get_logger
from core.models import EnrolmentStatus
from core.pipeline.context import Ctx, PipelineContext, event
from core.pipeline.drafting import (
    COMPOSE_MAX_OUTPUT_TOKENS,
    CONDENSE_MAX_OUTPUT_TOKENS,
    add_required_lines,
    compose_request,
    guard_rules_for,
)
from core.pipeline.guard import GuardRules, check_draft
from core.pipeline.outcomes import (
    BUDGET_REASON,
    MAX_RUN_ATTEMPTS,
    PROVIDER_OK,
    account_refused,
    cap_deferral,
    deferred,
    ended,
    has_replied,
    provider_failed,
    send_deferral,
)
from core.pipeline.research import (
    ResearchFetchError,
    condense_by_rules,
    lead_facts,
    playbook_facts,
    web_facts,
)
from core.pipeline.state import PipelineEvent, PipelineState
from core.sender_verification import hold_campaign_for_unverified_sender
from core.text import plural

log = get_logger(__name__)

MAX_COMPOSE_ATTEMPTS = 2  # one draft and one regeneration with the guard's feedback


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


# -- validate ---------------------------------------------------------------------------------


def validate(state: PipelineState, runtime: Ctx) -> dict[str, Any]:
    """The lead is messageable on this channel now: address, suppression, opt-out, replies, hours."""
    ctx = runtime.context
    enrolment = ctx.enrolment
    if problem := _address_problem(ctx.channel, ctx.address):
        return ended(ctx, "validate", EnrolmentStatus.skipped, problem)
    if ctx.lead.get("opted_out_at"):
        return ended(ctx, "validate", EnrolmentStatus.skipped, "the lead opted out")
    if enrolment.suppression:
        return ended(
            ctx,
            "validate",
            EnrolmentStatus.skipped,
            f"the address is on the suppression list ({enrolment.suppression})",
        )
    if enrolment.step > 0 and has_replied(ctx):
        return ended(ctx, "validate", EnrolmentStatus.skipped, "the lead replied: the sequence stopped")
    if ctx.channel == "email" and not (ctx.tenant.postal_address or "").strip():
        return ended(
            ctx,
            "validate",
            EnrolmentStatus.failed,
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
            return ended(ctx, "validate", EnrolmentStatus.pending, unverified, level="warning")
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
    campaign = ctx.campaign
    return ctx.runtime.call_model(
        messages, node=node, model=campaign.model, temperature=campaign.temperature,
        tenant_id=ctx.tenant.id, price_overrides=ctx.tenant.price_overrides, campaign_id=campaign.id,
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
                **ended(ctx, "research", EnrolmentStatus.pending, BUDGET_REASON, level="warning"),
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
            **ended(ctx, node, EnrolmentStatus.failed, exc.reason, level="error"),
            **provider_failed(exc.reason),
        }
    delay = max(exc.retry_after or 0.0, 30.0 * 2 ** max(ctx.enrolment.attempts - 1, 0))
    return {
        **ended(
            ctx,
            node,
            EnrolmentStatus.deferred,
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
        failed = ended(ctx, "compose", EnrolmentStatus.failed, str(exc), level="error")
        return {**failed, "compose_attempts": attempts}
    except BudgetExceeded:
        if ctx.mode == "preview":
            raise  # a preview is refused with the reason, not deferred
        return {
            **ended(ctx, "compose", EnrolmentStatus.pending, BUDGET_REASON, level="warning"),
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
    if state.get("compose_attempts", 0) < MAX_COMPOSE_ATTEMPTS and not state.get("status"):
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
        **ended(
            ctx,
            "guard",
            EnrolmentStatus.failed,
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
        return ended(ctx, "approval", EnrolmentStatus.awaiting_approval, "waiting for a reviewer")
    return {
        "events": [
            event(
                ctx,
                "approval",
                "no review needed" if not ctx.campaign.approval_required else "approved by a reviewer",
            )
        ]
    }


