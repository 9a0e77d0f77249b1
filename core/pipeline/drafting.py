"""What a draft is written from and checked against, as plain text and data.

The campaign's system prompt for a step and variant, the compose request around the lead's and
the research's data blocks, the A/B assignment, the token budgets of the model calls, and the
guard's rules for one lead. Pure functions with no model stack behind them: the pipeline's nodes
wrap them in LangChain messages, and the dashboard's cost estimate and review queue use them
without importing LangChain or LangGraph.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import phonenumbers
from sqlalchemy import case, literal
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ColumnElement

from core import merge_fields
from core.campaign_shape import Variant
from core.compliance.segments import GSM7_PART, GSM7_SINGLE
from core.config import Settings
from core.llm import prompts
from core.pipeline.guard import GuardRules
from core.pipeline.state import CampaignData, TenantData

# The most output a model call may write: also what the cost estimate prices.
COMPOSE_MAX_OUTPUT_TOKENS = {"sms": 200, "email": 500}
# The most of each lead field the compose request carries, whatever the lead holds (a lead
# imported before notes were capped, or edited since): a 10 MB note must not become the prompt.
LEAD_PROMPT_CHARS = {"notes": 1_000, "default": 200}
CONDENSE_MAX_OUTPUT_TOKENS = 300


def run_secrets() -> tuple[str, str]:
    """A per-run canary for the system prompt and a nonce for the data-block fences."""
    return f"LF-CANARY-{secrets.token_hex(6)}", secrets.token_hex(6)


def variant_prompt(campaign: CampaignData, variant: str) -> str | None:
    return next((v.prompt for v in campaign.variants if v.name == variant and v.prompt), None)


def variant_names(variants: Iterable[Variant]) -> list[str]:
    return [v.name for v in variants]


def weighted_variant_names(variants: Iterable[Variant]) -> list[str]:
    """The variants new leads are dealt to: all, but one given weight 0 ("keep the winner")."""
    return [v.name for v in variants if v.dealt]


def variant_index(lead_id: Any, count: int) -> Any:
    """The one A/B rule, for an int or a SQL expression alike: the lead id modulo the count.

    Previews and runs compute it in Python, enrolment in SQL for a whole audience in one
    statement, so the two always agree. Deterministic, and dealt round-robin: ids in import
    order split evenly, to within one lead, however small the audience.
    """
    return lead_id % count


def assign_variant(lead_id: int, variants: Iterable[Variant]) -> str:
    """The A/B variant of a lead: stable, so a re-run never switches it."""
    names = weighted_variant_names(variants)
    if not names:
        return "A"
    return names[variant_index(lead_id, len(names))]


def variant_expression(
    lead_id: ColumnElement[int] | InstrumentedAttribute[int], variants: Iterable[Variant]
) -> ColumnElement[Any]:
    """`assign_variant` as a SQL expression over a lead id column, for enrolment in bulk."""
    names = weighted_variant_names(variants)
    if len(names) <= 1:
        return literal(names[0] if names else "A")
    index = variant_index(lead_id, len(names))
    return case(*[(index == n, name) for n, name in enumerate(names)], else_=names[0])


def step_prompt(campaign: CampaignData, step: int) -> str | None:
    return campaign.steps[step].prompt if 0 <= step < len(campaign.steps) else None


def campaign_instructions(
    campaign: CampaignData, variant: str, step: int, lead: dict[str, Any] | None = None
) -> str:
    """The campaign's prompt with its variant's and step's; merge fields filled for `lead` when given."""
    parts = [campaign.system_prompt.strip()]
    if extra := variant_prompt(campaign, variant):
        parts.append(f"{prompts.VARIANT_LINE_PREFIX} {variant}: {extra.strip()}")
    if extra := step_prompt(campaign, step):
        parts.append(f"This is follow-up {step}: {extra.strip()}" if step else extra.strip())
    elif step:
        parts.append(f"This is follow-up {step}: refer briefly to the earlier message, add one new reason.")
    text = "\n".join(p for p in parts if p)
    return merge_fields.fill(text, lead) if lead is not None else text


def system_prompt_for(
    campaign: CampaignData, *, step: int, variant: str, canary: str, lead: dict[str, Any] | None = None
) -> tuple[str, str]:
    """(the full system prompt, its fixed part that a draft must never repeat); `lead` fills merge fields."""
    if campaign.channel == "sms":
        opt_out = (
            f"End with the exact line: {prompts.SMS_OPT_OUT_LINE}"
            if step == 0
            else "No opt-out line is needed on a follow-up."
        )
        limit = GSM7_SINGLE if campaign.max_sms_segments <= 1 else GSM7_PART * campaign.max_sms_segments
        format_rules = prompts.SMS_FORMAT_RULES.format(max_chars=limit, opt_out_rule=opt_out)
    else:
        format_rules = prompts.EMAIL_FORMAT_RULES
    fixed = prompts.COMPOSE_SYSTEM.format(
        channel_name="text message (SMS)" if campaign.channel == "sms" else "email",
        task=prompts.TASK_COMPOSE_SMS if campaign.channel == "sms" else prompts.TASK_COMPOSE_EMAIL,
        tone=prompts.tone_of(campaign.system_prompt),
        lead_block=prompts.BLOCK_LEAD,
        research_block=prompts.BLOCK_RESEARCH,
        earlier_block=prompts.BLOCK_EARLIER,
        format_rules=format_rules,
        canary=canary,
        instructions_header=prompts.CAMPAIGN_INSTRUCTIONS_HEADER,
        campaign_prompt="{campaign_prompt}",
    )
    full = fixed.replace("{campaign_prompt}", campaign_instructions(campaign, variant, step, lead))
    return full, fixed.split("Confidential marker")[0]


def _clipped(value: Any, budget: int) -> str:
    text = str(value)
    return text if len(text) <= budget else text[: budget - 1] + "…"


def _lead_for_prompt(lead: dict[str, Any]) -> dict[str, Any]:
    keep = ("first_name", "last_name", "company", "title", "industry", "city", "country", "notes")
    default = LEAD_PROMPT_CHARS["default"]
    return {k: _clipped(lead[k], LEAD_PROMPT_CHARS.get(k, default)) for k in keep if lead.get(k)}


def compose_request(
    campaign: CampaignData,
    lead: dict[str, Any],
    *,
    step: int,
    variant: str,
    earlier_messages: list[Any],
    facts: list[dict[str, str]],
    feedback: str | None,
    canary: str,
    nonce: str,
) -> tuple[str, str]:
    """(system prompt, request): the lead, the facts and earlier messages as delimited untrusted data."""
    system, _ = system_prompt_for(campaign, step=step, variant=variant, canary=canary, lead=lead)
    blocks = [
        prompts.data_block(prompts.BLOCK_LEAD, nonce, _lead_for_prompt(lead)),
        prompts.data_block(prompts.BLOCK_RESEARCH, nonce, facts),
    ]
    if earlier_messages:
        blocks.append(prompts.data_block(prompts.BLOCK_EARLIER, nonce, earlier_messages))
    ask = "Write the message now. Output only the message."
    if feedback:
        ask = prompts.FEEDBACK_TEMPLATE.format(problems=feedback) + "\n" + ask
    return system, "\n\n".join([*blocks, ask])


@lru_cache(maxsize=4096)
def _e164(raw: str | None, country: str) -> str | None:
    if not raw:
        return None
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(raw, country), phonenumbers.PhoneNumberFormat.E164
        )
    except phonenumbers.NumberParseException:
        return None


def add_required_lines(body: str, *, channel: str, step: int, postal_address: str | None) -> str:
    """The opt-out line (SMS first touch) or the unsubscribe line and postal address (email)."""
    if channel == "sms":
        if step == 0 and prompts.SMS_OPT_OUT_LINE.lower() not in body.lower():
            body = f"{body.rstrip()} {prompts.SMS_OPT_OUT_LINE}"
        return body
    footer = []
    if prompts.EMAIL_UNSUBSCRIBE_LINE.lower() not in body.lower():
        footer.append(prompts.EMAIL_UNSUBSCRIBE_LINE)
    address = (postal_address or "").strip()
    if address and address.splitlines()[0] not in body:
        footer.append(address)
    return body.rstrip() + ("\n\n--\n" + "\n".join(footer) if footer else "")


def guard_rules_for(
    settings: Settings,
    tenant: TenantData,
    campaign: CampaignData,
    lead: dict[str, Any],
    *,
    step: int,
    variant: str,
    canary: str,
) -> GuardRules:
    """What a draft for this lead is checked against (also used for a reviewer's edit)."""
    phones = {
        _e164(p, tenant.default_country)
        for p in (lead.get("phone"), tenant.sms_sender_id, settings.twilio_from_number)
    }
    emails = {e.lower() for e in (lead.get("email"), tenant.email_sender, settings.smtp_from) if e}
    _, protected = system_prompt_for(campaign, step=step, variant=variant, canary=canary)
    return GuardRules(
        channel=campaign.channel,
        step=step,
        max_sms_segments=campaign.max_sms_segments,
        link_allow_list=tenant.link_allow_list,
        allowed_phones=frozenset(p for p in phones if p),
        allowed_emails=frozenset(emails),
        canary=canary,
        protected_text=protected,
        default_country=tenant.default_country,
        postal_address=tenant.postal_address,
    )
