"""The offline model: a deterministic writer that needs no key and no network.

It is a LangChain chat model, so the pipeline treats it like any provider: it reads the task,
tone, the instructions a variant or follow-up adds (see `Style`) and the fenced data blocks of the
prompt (core.llm.prompts), writes a short message a salesperson would send (name, role,
company, one research fact as written, one clear ask) and reports token
usage by the estimate in core.llm.tokens, so costs and charts behave as with a real model.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from core.llm import prompts
from core.llm.prompts import (
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
from core.llm.tokens import CHARS_PER_TOKEN, estimate_prompt_tokens, estimate_text_tokens

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
    fact = str(pool[index]["fact"]).strip().rstrip(".")
    # A sentence of its own, as written: lowering its first letter would turn a company
    # ("Pretend Pharma is in Logistics") into "pretend Pharma".
    return fact[:1].upper() + fact[1:]


def _role_phrase(lead: dict[str, Any]) -> str:
    title, company = lead.get("title"), lead.get("company")
    if title and company:
        return f"as {title} at {company}"
    if company:
        return f"at {company}"
    if title:
        return f"as {title}"
    return "in your role"


@dataclass(frozen=True)
class Style:
    """How a variant's (or a follow-up's) own instructions ask the draft to differ.

    The campaign prompt gives the tone (the TONE header); the instructions that a variant or a
    step adds are read for plain cues, so an A/B test on the offline model compares different
    texts: a tone word, brevity, a question to close, or the opening. Instructions with none of
    these cues still get an opening of their own, chosen by their text: two variants never
    write the same draft.
    """

    tone: str = DEFAULT_TONE
    brief: bool = False
    question: bool = False
    opening: str = "greeting"  # greeting | fact | compliment | question


_OPENINGS = ("fact", "compliment", "question")
_CUES = {
    "brief": re.compile(r"\b(brief|brevity|short(er|est)?|concise|terse|few words|one sentence)\b"),
    "question": re.compile(r"\b(question|ask (them|whether|if))\b"),
    "fact": re.compile(r"\b(open|start|lead|begin)s?( it)? with (the |a |one )?(fact|research|news|insight)"),
    "compliment": re.compile(r"\b(compliment|praise|congratulat\w*)"),
    "question_opening": re.compile(r"\b(open|start|begin)s?( it)? with (a |the )?question"),
}


def style_of(instructions: str, tone: str) -> Style:
    """The style the added instructions ask for (see `Style`); empty instructions: the plain draft."""
    text = " ".join(instructions.lower().split())
    if not text:
        return Style(tone=tone)
    tone = prompts.tone_of(text) if any(t in text for t in prompts.TONES) else tone
    if _CUES["question_opening"].search(text):
        opening = "question"
    elif _CUES["fact"].search(text):
        opening = "fact"
    elif _CUES["compliment"].search(text):
        opening = "compliment"
    else:
        opening = "greeting"
    brief = bool(_CUES["brief"].search(text))
    question = bool(_CUES["question"].search(text)) and opening != "question"
    if not (brief or question) and opening == "greeting" and tone == DEFAULT_TONE:
        # No cue we know: an opening of its own, by the instructions' text (deterministic).
        opening = _OPENINGS[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(_OPENINGS)]
    return Style(tone=tone, brief=brief, question=question, opening=opening)


def added_instructions(system: str) -> str:
    """The lines a variant or a follow-up adds to the campaign prompt (core.pipeline.drafting)."""
    _, _, instructions = system.partition(prompts.CAMPAIGN_INSTRUCTIONS_HEADER)
    return " ".join(
        match.group(1) for match in re.finditer(
            rf"^(?:{prompts.VARIANT_LINE_PREFIX} [^:\n]+|This is follow-up \d+): (.+)$",
            instructions, flags=re.MULTILINE)
    )


def _question_ask(lead: dict[str, Any]) -> str:
    company = lead.get("company") or "your team"
    return f"Is getting more replies from cold outreach a priority at {company} this quarter?"


def _opening(style: Style, lead: dict[str, Any], greeting: str, fact: str | None) -> str:
    """The first words: the greeting, or the greeting and what the variant asks to open with."""
    company = lead.get("company") or "your team"
    if style.opening == "fact" and fact:
        return f"{greeting} {fact}, which is why I am writing."
    if style.opening == "compliment":
        return f"{greeting} Congratulations on the work {company} is doing."
    if style.opening == "question":
        return f"{greeting} Quick question: how does {company} follow up with new leads today?"
    return greeting


def write_message(
    lead: dict[str, Any], facts: list[dict[str, Any]], *, tone: str, task: str, short: bool,
    style: Style | None = None,
) -> str:
    """The offline draft for one lead: greeting (or the variant's opening), why them, one fact, one ask."""
    style = style or Style(tone=tone)
    tone = style.tone
    first = str(lead.get("first_name") or "there")
    last = str(lead.get("last_name") or "")
    greeting = _GREETINGS.get(tone, _GREETINGS[DEFAULT_TONE]).format(first=first, last=last)
    greeting = greeting.replace(" ,", ",").replace(" !", "!")
    ask = _question_ask(lead) if style.question else _ASKS.get(tone, _ASKS[DEFAULT_TONE])
    if short and task == TASK_COMPOSE_SMS:
        # The guard refused the full draft (too long: often a name outside GSM-7 makes the whole
        # SMS UCS-2, 67 characters a segment): the greeting and the ask alone fit two segments.
        return f"{greeting} {ask} {SMS_OPT_OUT_LINE}"
    fact = None if short else _choose_fact(facts, json.dumps(lead, sort_keys=True, default=str))
    opening = _opening(style, lead, greeting, fact)
    if style.brief:
        why = ""
    elif style.opening == "fact" and fact:
        why = f"A quick note for you {_role_phrase(lead)}."
    else:
        why = f"A quick note for you {_role_phrase(lead)}. " + (
            f"{fact}." if fact else "We help teams like yours win more replies with less effort."
        )
    if opening.endswith(",") and task != TASK_COMPOSE_EMAIL:
        # "Hello Ada, a quick note ...": what follows the greeting's comma is our own words.
        if why:
            why = why[0].lower() + why[1:]
        else:
            ask = ask[0].lower() + ask[1:]
    if task == TASK_COMPOSE_EMAIL:
        subject = f"A quick idea for {lead.get('company') or 'your team'}"
        if style.question:
            subject = f"A question for {lead.get('company') or 'your team'}"
        paragraphs = [f"Subject: {subject}", opening, why, ask, "Best regards"]
        return "\n\n".join(p for p in paragraphs if p)
    body = " ".join(p for p in (opening, why, ask) if p)
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
            style = style_of(added_instructions(system), tone)
            text = write_message(lead, facts, tone=tone, task=task, short=short, style=style)
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
