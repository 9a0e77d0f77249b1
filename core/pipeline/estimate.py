"""What a campaign will cost before it starts: audience x steps x the model calls of one step.

Plain SQL, the price table and the token estimate of the very prompts the pipeline would send;
no model is called and the model stack is not imported, so the campaign editor shows the
estimate at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from core.config import Settings
from core.db import Database
from core.errors import NotFound
from core.llm.prices import cost_microusd, load_price_table, price_for
from core.llm.tokens import estimate_prompt_tokens
from core.models import Campaign, Lead, Tenant
from core.permissions import Actor, Permission
from core.pipeline import prompts
from core.pipeline.audience import audience_conditions
from core.pipeline.drafting import (
    COMPOSE_MAX_OUTPUT_TOKENS,
    CONDENSE_MAX_OUTPUT_TOKENS,
    compose_request,
    run_secrets,
)
from core.pipeline.research import condense_by_rules, lead_facts, playbook_facts
from core.pipeline.store import campaign_data, lead_data, tenant_data

# Tokens the model adds around the condensation request's data (its instructions, the framing).
CONDENSE_OVERHEAD_TOKENS = 200
# What feedback adds to a regenerated draft's request.
FEEDBACK_TOKENS = 100


@dataclass(frozen=True)
class CostEstimate:
    """What a campaign will cost before it starts, from the price table and token estimates."""

    leads: int
    steps: int
    model: str
    calls_per_lead: int
    input_tokens_per_lead: int
    output_tokens_per_lead: int
    cost_per_lead_microusd: int
    total_microusd: int
    # Every draft regenerated once: the most the guard's retries can add.
    max_total_microusd: int


# Priced when the audience is empty, so the editor still shows what one lead would cost.
_SAMPLE_LEAD: dict[str, Any] = {
    "id": 0,
    "first_name": "Alexandra",
    "last_name": "Whitfield",
    "company": "Northwind Logistics",
    "title": "Head of Operations",
    "industry": "Logistics",
    "city": "Chicago",
    "country": "US",
}


def estimate_campaign_cost(db: Database, settings: Settings, actor: Actor, campaign_id: int) -> CostEstimate:
    """Audience size x steps x (research condensation + compose), each call estimated by its prompt.

    The offline model's calls are billed at the campaign model's price, as the pipeline records
    them; it makes no condensation call.
    """
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}")
        tenant = session.get(Tenant, actor.tenant_id)
        assert tenant is not None
        # The leads a start would enrol: the same conditions as enrolment itself.
        messageable = audience_conditions(actor.tenant_id, campaign.channel, campaign.audience or {})
        leads = session.scalar(select(func.count(Lead.id)).where(*messageable)) or 0
        sample = session.scalars(select(Lead).where(*messageable).limit(1)).first()
        tenant_view, campaign_view = tenant_data(tenant), campaign_data(campaign)
        lead_view = lead_data(sample) if sample is not None else _SAMPLE_LEAD
    price = price_for(
        campaign_view.model, load_price_table(settings.price_table_path), tenant_view.price_overrides
    )
    steps = max(len(campaign_view.steps), 1)
    facts = condense_by_rules(
        lead_facts(lead_view) + playbook_facts(tenant_view.playbook, lead_view.get("industry"))
    )
    canary, nonce = run_secrets()
    system, request = compose_request(
        campaign_view,
        lead_view,
        step=0,
        variant="A",
        earlier_messages=[],
        facts=facts,
        feedback=None,
        canary=canary,
        nonce=nonce,
    )
    compose_in = estimate_prompt_tokens([system, request])
    compose_out = COMPOSE_MAX_OUTPUT_TOKENS.get(campaign_view.channel, 300)
    input_tokens, output_tokens, calls = compose_in, compose_out, 1
    if settings.llm_provider != "offline":
        condense_in = estimate_prompt_tokens([prompts.CONDENSE_SYSTEM, str(facts)])
        input_tokens += condense_in + CONDENSE_OVERHEAD_TOKENS
        output_tokens += CONDENSE_MAX_OUTPUT_TOKENS
        calls += 1
    per_step = cost_microusd(price, input_tokens=input_tokens, output_tokens=output_tokens)
    regeneration = cost_microusd(price, input_tokens=compose_in + FEEDBACK_TOKENS, output_tokens=compose_out)
    per_lead = per_step * steps
    return CostEstimate(
        leads=leads,
        steps=steps,
        model=campaign_view.model,
        calls_per_lead=calls * steps,
        input_tokens_per_lead=input_tokens * steps,
        output_tokens_per_lead=output_tokens * steps,
        cost_per_lead_microusd=per_lead,
        total_microusd=per_lead * leads,
        max_total_microusd=(per_lead + regeneration * steps) * leads,
    )
