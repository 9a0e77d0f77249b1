"""The reply agent's nodes: classify, act, suggest.

A model that fails, is over budget or answers nonsense never stops the agent: the rules decide
instead and the detail says why. An opt-out the rules find is never overruled by a model.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from core.gate import BudgetExceeded, CallTooLarge
from core.inbound import prompts
from core.inbound.agent import ReplyContext, ReplyState
from core.inbound.answer_rules import answer_subject, check_answer
from core.inbound.classify import (
    Classification,
    Person,
    ReplyClass,
    classification_from_model,
    classify_by_rules,
)
from core.llm.calls import ModelCallFailed, ModelReply
from core.llm.prompts import BLOCK_LEAD, BLOCK_RESEARCH, data_block
from core.llm.records import ModelCallRecord
from core.pipeline.guard import GuardResult
from core.tenants import tenant_time_zone

Ctx = Runtime[ReplyContext]
MAX_SUGGEST_ATTEMPTS = 2  # one answer and one regeneration with the guard's feedback
SMS_ANSWER_CHARS = 300
_LEAD_PROMPT_FIELDS = ("first_name", "last_name", "company", "title", "industry", "city")


def _today(ctx: ReplyContext) -> date:
    zone = tenant_time_zone(ctx.tenant.time_zone, ctx.tenant.default_country)
    return ctx.now.astimezone(ZoneInfo(zone)).date()


def _model_call(ctx: ReplyContext, node: str, messages: list[BaseMessage], max_output: int,
                temperature: float) -> ModelReply:
    return ctx.runtime.call_model(
        messages, node=node, model=ctx.model, temperature=temperature, tenant_id=ctx.tenant.id,
        price_overrides=ctx.tenant.price_overrides, campaign_id=ctx.campaign.id if ctx.campaign else None,
        max_output_tokens=max_output,
    )


def _decided(found: Classification, **extra: Any) -> dict[str, Any]:
    return {"classification": found.kind.value, "detail": {**found.detail(), **extra}}


# -- classify ---------------------------------------------------------------------------------


def classify(state: ReplyState, runtime: Ctx) -> dict[str, Any]:
    """The rules decide offline; with a model configured, the model decides and the rules back it."""
    ctx = runtime.context
    reply = ctx.reply
    by_rules = classify_by_rules(reply.body, reply.subject, today=_today(ctx),
                                 day_first=ctx.tenant.default_country != "US")
    if ctx.runtime.provider == "offline":
        return _decided(by_rules)
    messages: list[BaseMessage] = [
        SystemMessage(prompts.CLASSIFY_SYSTEM.format(reply_block=prompts.BLOCK_REPLY,
                                                     today=_today(ctx).isoformat(), canary=ctx.canary)),
        HumanMessage(data_block(prompts.BLOCK_REPLY, ctx.nonce,
                                {"subject": reply.subject, "body": reply.body})),
    ]
    try:
        answer = _model_call(ctx, "reply_classify", messages, prompts.CLASSIFY_MAX_OUTPUT_TOKENS, 0.0)
    except (BudgetExceeded, CallTooLarge) as exc:
        return _decided(by_rules, model_skipped=str(exc) or "budget cap reached")
    except ModelCallFailed as exc:
        return {**_decided(by_rules, model_error=exc.reason), "llm_calls": [exc.record]}
    calls = [answer.record]
    by_model = classification_from_model(answer.text)
    if by_model is None:
        return {**_decided(by_rules, model_error="the model's answer was not a class"), "llm_calls": calls}
    if by_rules.kind is ReplyClass.unsubscribe and by_model.kind is not ReplyClass.unsubscribe:
        # A revocation in any reasonable words is binding: the model may not read it away.
        return {**_decided(by_rules, model_class=by_model.kind.value), "llm_calls": calls}
    return {**_decided(by_model), "llm_calls": calls}


# -- act --------------------------------------------------------------------------------------


def act(state: ReplyState, runtime: Ctx) -> dict[str, Any]:
    """Stop, postpone, opt out, remind, propose or hand over, as the class and campaign say."""
    ctx = runtime.context
    detail = dict(state.get("detail") or {})
    found = Classification(
        ReplyClass(state["classification"]),
        list(detail.get("evidence") or []),
        date.fromisoformat(detail["date"]) if detail.get("date") else None,
    )
    if person := detail.get("person"):
        found = dataclasses.replace(found, person=Person(**person))
    done = ctx.act(ctx, found)
    return {
        "detail": {**detail, **done.detail, "actions": done.actions},
        "handled": done.handled,
        "assigned_user_id": done.assigned_user_id,
    }


# -- suggest ----------------------------------------------------------------------------------


def grounding_facts(ctx: ReplyContext) -> list[dict[str, str]]:
    """The facts an answer may use; lead notes are free text from a spreadsheet, never quoted."""
    return [f for f in ctx.facts if f.get("source") != "lead.notes"]


def offline_answer(ctx: ReplyContext, kind: ReplyClass, facts: list[dict[str, str]]) -> str:
    """A plain answer a salesperson edits: thanks, one fact from the playbook or research, an ask."""
    first = (ctx.lead or {}).get("first_name") or "there"
    # What the tenant offers first (the playbook), then what research found about the company.
    preferred = ([f for f in facts if f["source"].startswith("playbook")]
                 + [f for f in facts if f["source"].startswith("http")]) or facts
    fact = preferred[0]["fact"].rstrip(".") + "." if preferred else ""
    if kind is ReplyClass.interested:
        opening = f"Hi {first}, thanks for getting back to me!"
        ask = ("Would a 15-minute call this week work? Tell me a time that suits you and I will "
               "send an invite.")
    else:
        opening = f"Hi {first}, thanks for your question."
        ask = ("Happy to go through the details: would a short call this week help, or shall I "
               "answer in writing?")
    text = " ".join(p for p in (opening, fact, ask) if p)
    if ctx.reply.channel == "sms" and len(text) > SMS_ANSWER_CHARS:
        text = f"{opening} {ask}"
    return text


def _suggest_messages(ctx: ReplyContext, kind: ReplyClass, facts: list[dict[str, str]],
                      feedback: str | None) -> list[BaseMessage]:
    system = prompts.SUGGEST_SYSTEM.format(
        reply_class=kind.value, channel_name="text message" if ctx.reply.channel == "sms" else "email",
        reply_block=prompts.BLOCK_REPLY, goal=prompts.GOALS[kind.value], research_block=BLOCK_RESEARCH,
        lead_block=BLOCK_LEAD, conversation_block=prompts.BLOCK_CONVERSATION,
        max_chars=SMS_ANSWER_CHARS if ctx.reply.channel == "sms" else 1200, canary=ctx.canary,
    )
    lead = {k: (ctx.lead or {}).get(k) for k in _LEAD_PROMPT_FIELDS if (ctx.lead or {}).get(k)}
    request = "\n\n".join([
        data_block(BLOCK_LEAD, ctx.nonce, lead),
        data_block(BLOCK_RESEARCH, ctx.nonce, facts),
        data_block(prompts.BLOCK_CONVERSATION, ctx.nonce, ctx.conversation[-6:]),
        data_block(prompts.BLOCK_REPLY, ctx.nonce, {"subject": ctx.reply.subject, "body": ctx.reply.body}),
    ])
    if feedback:
        request += "\n\n" + prompts.FEEDBACK_TEMPLATE.format(problems=feedback)
    return [SystemMessage(system), HumanMessage(request)]


def _guarded(ctx: ReplyContext, text: str) -> GuardResult:
    assert ctx.campaign is not None and ctx.lead is not None
    return check_answer(ctx.runtime.settings, ctx.tenant, ctx.campaign, ctx.lead,
                        channel=ctx.reply.channel, text=text,
                        subject=answer_subject(ctx.reply.channel, ctx.reply.subject), canary=ctx.canary)


def suggest(state: ReplyState, runtime: Ctx) -> dict[str, Any]:
    """An answer for interested and question, grounded in the facts, through the drafts' guard."""
    ctx = runtime.context
    detail = dict(state.get("detail") or {})
    if ctx.campaign is None or ctx.lead is None:
        detail["suggestion"] = "no answer suggested: the reply matches no campaign's lead"
        return {"detail": detail}
    kind = ReplyClass(state["classification"])
    facts = grounding_facts(ctx)
    calls: list[ModelCallRecord] = []
    feedback: str | None = None
    problems: list[str] = []
    for _ in range(MAX_SUGGEST_ATTEMPTS):
        if ctx.runtime.provider == "offline":
            text = offline_answer(ctx, kind, facts)
        else:
            try:
                answer = _model_call(ctx, "reply_suggest", _suggest_messages(ctx, kind, facts, feedback),
                                     prompts.SUGGEST_MAX_OUTPUT_TOKENS, 0.4)
            except (BudgetExceeded, CallTooLarge) as exc:
                detail["suggestion"] = f"no answer suggested: {exc or 'budget cap reached'}"
                return {"detail": detail, "llm_calls": calls}
            except ModelCallFailed as exc:
                detail["suggestion"] = f"no answer suggested: {exc.reason}"
                return {"detail": detail, "llm_calls": [*calls, exc.record]}
            calls.append(answer.record)
            text = answer.text
        result = _guarded(ctx, text)
        if result.passed:
            detail["facts_used"] = facts
            return {"suggested_reply": result.body, "detail": detail, "llm_calls": calls}
        problems = result.problems
        feedback = "; ".join(problems)
        if ctx.runtime.provider == "offline":
            break  # the same rules write the same text again
    detail["suggestion"] = f"no answer suggested: the guard refused it ({'; '.join(problems)})"
    return {"detail": detail, "llm_calls": calls}
