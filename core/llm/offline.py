"""The offline model: a deterministic writer that needs no key and no network.

It is a LangChain chat model, so the pipeline treats it like any provider: it reads the task,
tone and the fenced data blocks of the prompt (core.pipeline.prompts), writes a short message a
salesperson would send (name, role, company, one research fact, one clear ask) and reports token
usage by the estimate in core.llm.tokens, so costs and charts behave as with a real model.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from core.llm.tokens import CHARS_PER_TOKEN, estimate_prompt_tokens, estimate_text_tokens
from core.pipeline.prompts import (
    BLOCK_LEAD,
    BLOCK_RESEARCH,
    DEFAULT_TONE,
    SMS_OPT_OUT_LINE,
    TASK_COMPOSE_EMAIL,
    TASK_COMPOSE_SMS,
    TASK_CONDENSE_FACTS,
    read_block,
    read_header,
)

OFFLINE_MODEL_NAME = "offline"

# Facts from these sources say something about the company or what we offer; they make the
# best single sentence. Lead notes are never quoted: they are free text from a spreadsheet.
_PREFERRED_SOURCES = ("http", "playbook")
_NEVER_QUOTED = ("lead.notes",)

_GREETINGS = {
    "friendly": "Hi {first}!",
    "warm": "Hi {first},",
    "casual": "Hey {first},",
    "formal": "Dear {first} {last},",
    "direct": "{first},",
    "professional": "Hello {first},",
}
_ASKS = {
    "friendly": "Would a quick 15-minute call next week be useful?",
    "warm": "Would you be open to a short call next week?",
    "casual": "Up for a quick chat next week?",
    "formal": "Would you be available for a brief call next week?",
    "direct": "Can we take 15 minutes next week?",
    "professional": "Would a 15-minute call next week make sense?",
}


def _choose_fact(facts: list[dict[str, Any]], seed: str) -> str | None:
    usable = [
        f
        for f in facts
        if isinstance(f, dict) and f.get("fact") and str(f.get("source", "")) not in _NEVER_QUOTED
    ]
    preferred = [f for f in usable if str(f.get("source", "")).startswith(_PREFERRED_SOURCES)]
    pool = preferred or [f for f in usable if f.get("source") == "lead.industry"]
    if not pool:
        return None
    # Deterministic, but not always the first fact: the choice follows the lead.
    index = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % min(len(pool), 3)
    return str(pool[index]["fact"]).strip().rstrip(".")


def _role_phrase(lead: dict[str, Any]) -> str:
    title, company = lead.get("title"), lead.get("company")
    if title and company:
        return f"as {title} at {company}"
    if company:
        return f"at {company}"
    if title:
        return f"as {title}"
    return "in your role"


def write_message(
    lead: dict[str, Any], facts: list[dict[str, Any]], *, tone: str, task: str, short: bool
) -> str:
    """The offline draft for one lead: greeting, why them, one fact, one ask."""
    first = str(lead.get("first_name") or "there")
    last = str(lead.get("last_name") or "")
    greeting = _GREETINGS.get(tone, _GREETINGS[DEFAULT_TONE]).format(first=first, last=last)
    greeting = greeting.replace(" ,", ",").replace(" !", "!")
    ask = _ASKS.get(tone, _ASKS[DEFAULT_TONE])
    if short and task == TASK_COMPOSE_SMS:
        # The guard refused the full draft (too long: often a name outside GSM-7 makes the whole
        # SMS UCS-2, 67 characters a segment): the greeting and the ask alone fit two segments.
        return f"{greeting} {ask} {SMS_OPT_OUT_LINE}"
    fact = None if short else _choose_fact(facts, json.dumps(lead, sort_keys=True, default=str))
    point = fact[0].lower() + fact[1:] if fact and not fact[:2].isupper() else fact
    why = f"A quick note for you {_role_phrase(lead)}: " + (
        f"{point}." if point else "we help teams like yours win more replies with less effort."
    )
    if task == TASK_COMPOSE_EMAIL:
        subject = f"A quick idea for {lead.get('company') or 'your team'}"
        return f"Subject: {subject}\n\n{greeting}\n\n{why}\n\n{ask}\n\nBest regards"
    body = f"{greeting} {why} {ask}"
    if task == TASK_COMPOSE_SMS:
        return f"{body} {SMS_OPT_OUT_LINE}"
    return body


class OfflineChatModel(BaseChatModel):
    """Deterministic chat model for the demo, tests and benchmarks."""

    model_name: str = OFFLINE_MODEL_NAME

    @property
    def _llm_type(self) -> str:
        return "leadflow-offline"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        max_tokens = kwargs.get("max_tokens")
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages, max_tokens=max_tokens))])

    def reply(self, messages: list[BaseMessage], *, max_tokens: int | None = None) -> AIMessage:
        """The reply with its usage metadata, as `invoke` returns it, without LangChain's run machinery.

        The pipeline calls this directly (core.llm.calls): the offline model runs in process, and
        `invoke`'s callback manager and run bookkeeping cost as much as writing the message.
        `max_tokens` cuts the text as a provider does (by the same estimate as its usage).
        """
        contents = [m.content if isinstance(m.content, str) else json.dumps(m.content) for m in messages]
        system = contents[0] if contents else ""
        prompt = "\n".join(contents)
        task = read_header(system, "TASK") or TASK_COMPOSE_SMS
        facts = read_block(prompt, BLOCK_RESEARCH) or []
        if task == TASK_CONDENSE_FACTS:
            text = json.dumps(facts[:5], ensure_ascii=False)
        else:
            lead = read_block(prompt, BLOCK_LEAD) or {}
            tone = read_header(system, "TONE") or DEFAULT_TONE
            # Feedback from the guard means the last draft failed; the short form drops the fact.
            short = "rejected by the checker" in contents[-1] if contents else False
            text = write_message(lead, facts, tone=tone, task=task, short=short)
        if max_tokens is not None and estimate_text_tokens(text) > max_tokens:
            text = text[: max(1, max_tokens) * CHARS_PER_TOKEN]
        input_tokens = estimate_prompt_tokens(contents)
        output_tokens = estimate_text_tokens(text)
        return AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
            response_metadata={"model_name": self.model_name},
        )
