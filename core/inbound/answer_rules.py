"""What an answer to a reply is checked against: the outreach drafts' guard, as a follow-up.

One place for the agent's suggested answer and the answer a person sends, so that a person's
edit meets the same checks as the suggestion it started from.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.config import Settings
from core.inbound import prompts
from core.pipeline.drafting import add_required_lines, guard_rules_for
from core.pipeline.guard import GuardResult, check_draft
from core.pipeline.state import CampaignData, TenantData

# An answer is checked as a follow-up in the conversation: an SMS needs no second opt-out line;
# an email keeps its unsubscribe line and postal address.
ANSWER_STEP = 1


def answer_subject(channel: str, original: str | None) -> str | None:
    """An email answer's subject: "Re: " and the reply's own (once); an SMS has none."""
    if channel != "email":
        return None
    original = (original or "").strip()
    return original if original.lower().startswith("re:") else f"Re: {original}".strip()


def check_answer(
    settings: Settings,
    tenant: TenantData,
    campaign: CampaignData,
    lead: dict[str, Any],
    *,
    channel: str,
    text: str,
    subject: str | None,
    canary: str,
) -> GuardResult:
    """The answer with its required lines added, and whether it passes the guard."""
    rules = guard_rules_for(settings, tenant, dataclasses.replace(campaign, channel=channel), lead,
                            step=ANSWER_STEP, variant="A", canary=canary)
    # The text that must not leak is the agent's own instructions, not the campaign's.
    rules = dataclasses.replace(rules, protected_text=prompts.SUGGEST_SYSTEM)
    body = add_required_lines(text.strip(), channel=channel, step=ANSWER_STEP,
                              postal_address=tenant.postal_address)
    return check_draft(body, subject, rules)
