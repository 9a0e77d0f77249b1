"""What a campaign will cost before it starts: audience x steps x the model calls of one step.

Plain SQL, the price table and the token estimate of the very prompts the pipeline would send;
no model is called and the model stack is not imported, so the campaign editor shows the
estimate at once.

A large audience is not counted row by row on every page load (a million leads take half a
second to count): it is estimated from a random sample of the tenant's lead ids, drawn in
blocks of consecutive ids so that the sample is a handful of index range scans, with its 95%
margin of error. An audience the sample finds small, or cannot estimate within
`MAX_SAMPLED_MARGIN`, is counted exactly. The cost of a lead is the mean over up to
`PRICED_LEADS` leads of the audience, each priced from its own prompt. The sample is drawn from
a seed derived from the tenant, channel and filter, so the same audience gives the same figures
on every page and every load.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import Database
from core.errors import NotFound
from core.leads.columns import RUN_COLUMNS
from core.llm import prompts
from core.llm.prices import ModelPrice, cost_microusd, load_price_table, price_for
from core.llm.tokens import estimate_prompt_tokens
from core.models import Campaign, Lead, Tenant
from core.permissions import Actor, Permission
from core.pipeline.audience import audience_conditions
from core.pipeline.drafting import (
    COMPOSE_MAX_OUTPUT_TOKENS,
    CONDENSE_MAX_OUTPUT_TOKENS,
    compose_request,
    run_secrets,
)
from core.pipeline.research import condense_by_rules, lead_facts, playbook_facts
from core.pipeline.run_inputs import tenant_data
from core.pipeline.state import CampaignData, TenantData
from core.reports import format_usd
from core.text import plural

# Tokens the model adds around the condensation request's data (its instructions, the framing).
CONDENSE_OVERHEAD_TOKENS = 200
# What feedback adds to a regenerated draft's request.
FEEDBACK_TOKENS = 100

# An audience of at most this many leads is counted exactly.
EXACT_LEADS = 20_000
# The sample: this many blocks of this many consecutive lead ids (5,000 ids, about 20 ms).
SAMPLE_BLOCKS = 500
BLOCK_IDS = 10
# A sample whose margin is wider than this (an audience scattered in clumps) is not shown: the
# audience is counted exactly instead.
MAX_SAMPLED_MARGIN = 0.10
# How many of the audience's leads are priced from their own prompts (about 0.1 ms each).
PRICED_LEADS = 100
# Margins are 95% intervals: 1.96 standard errors.
Z_95 = 1.96


@dataclass(frozen=True)
class AudienceSize:
    """How many leads an audience holds: counted, or estimated from a sample."""

    leads: int
    # The relative 95% margin of error (0.03 is "± 3%"); 0.0 when counted.
    margin: float
    # The audience's leads found in the sample it was estimated from; 0 when counted.
    sample_leads: int

    @property
    def exact(self) -> bool:
        return self.sample_leads == 0


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
    # The relative 95% margin of `total_microusd` (leads estimated, cost of a lead averaged);
    # 0.0 when every lead was counted and priced.
    margin: float = 0.0
    # The audience's leads the count was estimated from; 0 when the audience was counted.
    sample_leads: int = 0
    # The leads whose prompts were priced (the cost of a lead is their mean).
    priced_leads: int = 0


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


def audience_seed(tenant_id: int, channel: str, audience: dict[str, Any]) -> int:
    """The sample's seed: the same audience of the same tenant draws the same sample."""
    key = json.dumps([tenant_id, channel, audience], sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class _Sized:
    size: AudienceSize
    # Ids of audience leads to price: a random pick from the sample, or the first ones.
    priced_ids: list[int]


def _sampled_blocks(low: int, high: int, rng: random.Random) -> list[int] | None:
    """The blocks of ids to look at, or None when the sample would be every id there is."""
    blocks = math.ceil((high - low + 1) / BLOCK_IDS)
    if blocks <= SAMPLE_BLOCKS:
        return None
    return sorted(rng.sample(range(blocks), SAMPLE_BLOCKS))


def _estimate_from_blocks(hits_per_block: list[int], blocks: int) -> tuple[float, float]:
    """(leads, relative 95% margin): simple random sampling of blocks, without replacement."""
    drawn = len(hits_per_block)
    mean = statistics.fmean(hits_per_block)
    leads = blocks * mean
    if leads == 0:
        return 0.0, 0.0
    spread = statistics.stdev(hits_per_block) if drawn > 1 else 0.0
    standard_error = blocks * spread / math.sqrt(drawn) * math.sqrt(1 - drawn / blocks)
    return leads, Z_95 * standard_error / leads


def _id_in(session: Session, ids: list[int]) -> ColumnElement[bool]:
    """`Lead.id IN ids`, one index lookup for the whole list.

    PostgreSQL gets the list as one array parameter: 5,000 parameters of an IN list cost the
    driver more to send than the database takes to answer.
    """
    if session.get_bind().dialect.name == "postgresql":
        return Lead.id == any_(bindparam("sample_ids", ids, type_=ARRAY(BigInteger)))
    return Lead.id.in_(ids)


def size_audience(session: Session, conditions: list[ColumnElement[bool]], *, seed: int) -> _Sized:
    """Count the leads matching `conditions` exactly, or estimate them from a sample of ids."""
    rng = random.Random(seed)
    low, high = session.execute(select(func.min(Lead.id), func.max(Lead.id))).one()
    if low is None:
        return _Sized(AudienceSize(0, 0.0, 0), [])
    drawn = _sampled_blocks(low, high, rng)
    in_sample: list[ColumnElement[bool]] = []
    if drawn is not None:
        ids = [low + block * BLOCK_IDS + offset for block in drawn for offset in range(BLOCK_IDS)]
        in_sample = [_id_in(session, ids)]
    hits = list(session.scalars(select(Lead.id).where(*conditions, *in_sample)))
    priced = rng.sample(hits, min(PRICED_LEADS, len(hits)))
    if drawn is None:  # the sample was every id: a count
        return _Sized(AudienceSize(len(hits), 0.0, 0), priced)
    per_block = dict.fromkeys(drawn, 0)
    for lead_id in hits:
        per_block[(lead_id - low) // BLOCK_IDS] += 1
    blocks = math.ceil((high - low + 1) / BLOCK_IDS)
    leads, margin = _estimate_from_blocks(list(per_block.values()), blocks)
    if leads > EXACT_LEADS and margin <= MAX_SAMPLED_MARGIN:
        return _Sized(AudienceSize(round(leads), margin, len(hits)), priced)
    count = session.scalar(select(func.count(Lead.id)).where(*conditions)) or 0
    if not priced and count:
        priced = list(session.scalars(select(Lead.id).where(*conditions).order_by(Lead.id)
                                      .limit(PRICED_LEADS)))
    return _Sized(AudienceSize(count, 0.0, 0), priced)


def estimate_audience_size(
    db: Database, actor: Actor, channel: str, audience: dict[str, Any], *, seed: int | None = None
) -> AudienceSize:
    """How many leads a campaign with this channel and (unsaved) filter would enrol now.

    The same conditions as enrolment: not opted out, an address for the channel, not suppressed.
    """
    actor.require(Permission.view_campaigns)
    audience = audience or {}
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        conditions = audience_conditions(actor.tenant_id, channel, audience)
        if seed is None:
            seed = audience_seed(actor.tenant_id, channel, audience)
        return size_audience(session, conditions, seed=seed).size


@dataclass(frozen=True)
class _LeadPrice:
    input_tokens: int
    output_tokens: int
    compose_in: int
    compose_out: int
    calls: int


def _price_lead(settings: Settings, tenant: TenantData, campaign: CampaignData,
                lead: dict[str, Any]) -> _LeadPrice:
    """One step of one lead: research condensation (not offline) and compose, by their prompts."""
    facts = condense_by_rules(lead_facts(lead) + playbook_facts(tenant.playbook, lead.get("industry")))
    canary, nonce = run_secrets()
    system, request = compose_request(
        campaign, lead, step=0, variant="A", earlier_messages=[], facts=facts, feedback=None,
        canary=canary, nonce=nonce,
    )
    compose_in = estimate_prompt_tokens([system, request])
    compose_out = COMPOSE_MAX_OUTPUT_TOKENS.get(campaign.channel, 300)
    input_tokens, output_tokens, calls = compose_in, compose_out, 1
    if settings.llm_provider != "offline":
        condense_in = estimate_prompt_tokens([prompts.CONDENSE_SYSTEM, str(facts)])
        input_tokens += condense_in + CONDENSE_OVERHEAD_TOKENS
        output_tokens += CONDENSE_MAX_OUTPUT_TOKENS
        calls += 1
    return _LeadPrice(input_tokens, output_tokens, compose_in, compose_out, calls)


def _mean_margin(values: list[int], population: int) -> float:
    """The relative 95% margin of the mean of `values`, drawn from `population` values."""
    mean = statistics.fmean(values) if values else 0.0
    if len(values) < 2 or mean == 0 or len(values) >= population:
        return 0.0
    fraction = len(values) / population
    return Z_95 * statistics.stdev(values) / math.sqrt(len(values)) * math.sqrt(1 - fraction) / mean


def estimate_campaign_cost(
    db: Database, settings: Settings, actor: Actor, campaign_id: int, *, seed: int | None = None
) -> CostEstimate:
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
        audience = campaign.audience or {}
        messageable = audience_conditions(actor.tenant_id, campaign.channel, audience)
        if seed is None:
            seed = audience_seed(actor.tenant_id, campaign.channel, audience)
        sized = size_audience(session, messageable, seed=seed)
        columns = [getattr(Lead, name) for name in RUN_COLUMNS]
        rows = session.execute(select(*columns).where(Lead.id.in_(sized.priced_ids)).order_by(Lead.id))
        leads = [dict(row._mapping) for row in rows] or [_SAMPLE_LEAD]
        tenant_view, campaign_view = tenant_data(tenant), CampaignData.of(campaign)
    price = price_for(
        campaign_view.model, load_price_table(settings.price_table_path), tenant_view.price_overrides
    )
    steps = max(len(campaign_view.steps), 1)
    priced = [_price_lead(settings, tenant_view, campaign_view, lead) for lead in leads]
    return _estimate_from(sized.size, priced, price, steps, campaign_view.model,
                          priced_leads=len(sized.priced_ids))


def _estimate_from(size: AudienceSize, priced: list[_LeadPrice], price: ModelPrice, steps: int,
                   model: str, *, priced_leads: int) -> CostEstimate:
    per_step = [cost_microusd(price, input_tokens=p.input_tokens, output_tokens=p.output_tokens)
                for p in priced]
    regeneration = [cost_microusd(price, input_tokens=p.compose_in + FEEDBACK_TOKENS,
                                  output_tokens=p.compose_out) for p in priced]
    per_lead = round(statistics.fmean(per_step)) * steps
    cost_margin = _mean_margin(per_step, size.leads)
    return CostEstimate(
        leads=size.leads,
        steps=steps,
        model=model,
        calls_per_lead=priced[0].calls * steps,
        input_tokens_per_lead=round(statistics.fmean(p.input_tokens for p in priced)) * steps,
        output_tokens_per_lead=round(statistics.fmean(p.output_tokens for p in priced)) * steps,
        cost_per_lead_microusd=per_lead,
        total_microusd=per_lead * size.leads,
        max_total_microusd=(per_lead + round(statistics.fmean(regeneration)) * steps) * size.leads,
        margin=math.hypot(size.margin, cost_margin),
        sample_leads=size.sample_leads,
        priced_leads=priced_leads,
    )


def _percent(margin: float) -> str:
    percent = margin * 100
    return f"{max(percent, 0.1):.1f}%" if percent < 10 else f"{percent:.0f}%"


def describe_audience_size(size: AudienceSize) -> str:
    """'1,234 leads', or 'about 980,000 leads' (three significant figures: no false precision)."""
    if size.exact:
        return plural(size.leads, "lead")
    return f"about {plural(int(float(f'{size.leads:.3g}')), 'lead')}"


def describe_sample(size: AudienceSize) -> str | None:
    """How an estimated size was reached: '± 0.4%, estimated from a sample of 4,900 leads'."""
    if size.exact:
        return None
    return f"± {_percent(size.margin)}, estimated from a sample of {plural(size.sample_leads, 'lead')}"


def describe_cost(estimate: CostEstimate) -> str:
    """The expected total in words, with how it was estimated when it was.

    "$4.20 for 42 leads"; "about $12.40 ± 3%, estimated from a sample of 5,000 leads"; or, for an
    audience counted but too large to price lead by lead, "about $9.10 ± 0.4% for 15,210 leads
    (the cost of a lead averaged over 200 of them)".
    """
    total = format_usd(estimate.total_microusd)
    if estimate.sample_leads:
        return (f"about {total} ± {_percent(estimate.margin)}, estimated from a sample of "
                f"{plural(estimate.sample_leads, 'lead')}")
    if estimate.margin:
        return (f"about {total} ± {_percent(estimate.margin)} for {plural(estimate.leads, 'lead')} "
                f"(the cost of a lead averaged over {estimate.priced_leads:,} of them)")
    return f"{total} for {plural(estimate.leads, 'lead')}"
