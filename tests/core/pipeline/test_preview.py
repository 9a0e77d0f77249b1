"""Preview one lead's draft, estimate a campaign's cost, and select its audience."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.campaign_runs import start_campaign
from core.campaign_shape import Variant
from core.campaigns import create_campaign
from core.config import Settings
from core.errors import ValidationError
from core.models import Campaign, CampaignLead, LeadTag, LLMCall, Role, Suppression
from core.pipeline.audience import audience_count, audience_query
from core.pipeline.drafting import assign_variant
from core.pipeline.estimate import estimate_campaign_cost
from core.pipeline.service import PipelineRuntime, preview
from tests.conftest import make_settings
from tests.core.pipeline.conftest import NOW, Seed
from tests.factories import insert_leads, make_actor


def test_preview_returns_facts_draft_segments_and_cost_and_enrols_nothing(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seed.campaign(approval_required=True)
    lead_id = seed.lead(time_zone="Asia/Tokyo")  # outside its window now: a preview ignores that
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    result = preview(seed.db, runtime, actor, seed.campaign_id, lead_id)
    assert result.status == "ready" and result.guard_passed and result.problems == []
    assert result.body and "Ada" in result.body and result.body.endswith("Reply STOP to opt out")
    assert result.encoding == "GSM-7" and result.segments in (1, 2)
    assert {"fact": "Teams using Leadflow book 30% more meetings", "source": "playbook"} in result.facts
    assert result.input_tokens > 0 and result.output_tokens > 0
    # Billed as the campaign's model (gpt-4o-mini: $0.15 / $0.60 per million tokens) would bill it.
    expected = round(result.input_tokens * 0.15 + result.output_tokens * 0.60)
    assert result.cost_microusd > 0 and abs(result.cost_microusd - expected) <= 1
    assert [e["node"] for e in result.events] == ["validate", "research", "compose", "guard", "finalize"]
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        assert session.scalar(select(func.count(CampaignLead.id))) == 0
        assert session.scalars(select(LLMCall.node)).all() == ["preview:compose"]
    assert seed.messages() == []


def test_preview_of_an_unmessageable_lead_says_why(seed: Seed, runtime: PipelineRuntime) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    result = preview(seed.db, runtime, actor, seed.campaign_id, seed.lead(phone="12345"))
    assert result.status == "skipped" and "not a valid phone number" in (result.reason or "")
    assert result.body is None


def test_estimate_for_the_audience(seed: Seed, settings: Settings) -> None:
    seed.campaign(steps=[{"delay_hours": 0}, {"delay_hours": 48}], audience={"industries": ["software"]})
    for i in range(4):
        seed.lead(
            phone=f"+1212555020{i}", email=f"s{i}@x.example", industry="Software" if i < 3 else "Retail"
        )
    # Not counted: a start would not enrol them (no number for SMS; a suppressed number).
    seed.lead(phone=None, email="nophone@x.example", industry="Software")
    seed.lead(phone="+12125550299", email="stopped@x.example", industry="Software")
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        session.add(Suppression(channel="sms", address="+12125550299", reason="stop"))
    values = settings.model_dump()
    values.update(llm_provider="openai", openai_api_key="sk-test")
    actor = make_actor(seed.db, seed.tenant_id, Role.analyst)
    estimate = estimate_campaign_cost(seed.db, make_settings(**values), actor, seed.campaign_id)
    assert (estimate.leads, estimate.steps, estimate.model, estimate.calls_per_lead) == (
        3,
        2,
        "gpt-4o-mini",
        4,
    )
    per_step_in, per_step_out = estimate.input_tokens_per_lead // 2, estimate.output_tokens_per_lead // 2
    assert per_step_in > 300 and per_step_out == 200 + 300
    expected_per_lead = 2 * round(per_step_in * 0.15 + per_step_out * 0.6)
    assert abs(estimate.cost_per_lead_microusd - expected_per_lead) <= 2
    assert estimate.total_microusd == 3 * estimate.cost_per_lead_microusd
    assert estimate.max_total_microusd > estimate.total_microusd


def test_offline_estimate_bills_as_the_campaign_model(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.lead()
    estimate = estimate_campaign_cost(
        seed.db, runtime.settings, make_actor(seed.db, seed.tenant_id), seed.campaign_id
    )
    assert (estimate.leads, estimate.model, estimate.calls_per_lead) == (1, "gpt-4o-mini", 1)
    assert estimate.total_microusd == estimate.cost_per_lead_microusd > 0


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({}, 4),  # every lead but the opted-out one
        ({"tags": ["vip"]}, 2),
        ({"tags": ["vip", "expo"]}, 3),
        ({"industries": ["SOFTWARE"]}, 2),
        ({"countries": ["de"]}, 1),
        ({"tags": ["vip"], "countries": ["US"]}, 1),
    ],
)
def test_audience_filters(seed: Seed, audience: dict[str, Any], expected: int) -> None:
    leads = [
        seed.lead(phone="+12125550301", email="a@x.example", country="US", industry="Software"),
        seed.lead(phone="+12125550302", email="b@x.example", country="DE", industry="Software"),
        seed.lead(phone="+12125550303", email="c@x.example", country="US", industry="Retail"),
        seed.lead(phone="+12125550304", email="d@x.example", country="US", industry="Retail"),
        seed.lead(phone="+12125550305", email="e@x.example", country="US", opted_out_at=NOW),
    ]
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        for lead_id, tag in [(leads[0], "vip"), (leads[1], "vip"), (leads[2], "expo"), (leads[4], "vip")]:
            session.add(LeadTag(tenant_id=seed.tenant_id, lead_id=lead_id, tag=tag))
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        assert audience_count(session, audience) == expected


def test_unknown_audience_key_is_an_error_for_people(seed: Seed) -> None:
    with (
        seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session,
        pytest.raises(ValidationError, match="unknown audience filter keys: cities"),
    ):
        audience_count(session, {"cities": ["Paris"]})


def test_audience_query_takes_a_campaign(seed: Seed) -> None:
    seed.campaign(audience={"countries": ["DE"]})
    seed.lead(phone="+12125550401", email="a@y.example", country="US")
    german = seed.lead(phone="+12125550402", email="b@y.example", country="DE")
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, seed.campaign_id)
        assert [lead.id for lead in session.scalars(audience_query(campaign))] == [german]


VARIANTS = (Variant("A", "Lead with the time saved."), Variant("B", "Lead with cost."))


def test_preview_and_enrolment_give_each_of_1000_leads_the_same_variant(seed: Seed) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    lead_ids = insert_leads(seed.db, seed.tenant_id, 1_000)
    for variants in (VARIANTS, (*VARIANTS, Variant("C", "Lead with a question."))):
        campaign = create_campaign(
            seed.db, actor, name=f"AB {len(variants)}", channel="sms", variants=variants
        )
        start_campaign(seed.db, actor, campaign.id)
        with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
            enrolled = dict(
                session.execute(
                    select(CampaignLead.lead_id, CampaignLead.variant).where(
                        CampaignLead.campaign_id == campaign.id
                    )
                ).all()
            )
        assert set(enrolled) == set(lead_ids)
        previewed = {lead_id: assign_variant(lead_id, campaign.variants) for lead_id in lead_ids}
        assert previewed == enrolled
        # An even split: every variant gets its share, give or take 10%.
        counts = [list(enrolled.values()).count(v.name) for v in variants]
        assert min(counts) >= 0.9 * 1_000 / len(variants)


def test_the_preview_shows_the_variant_the_lead_got_and_the_rule_for_the_others(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seed.campaign(variants=VARIANTS)
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    leads = [seed.lead(phone=f"+1212555060{n}", email=f"v{n}@x.example") for n in range(4)]
    by_rule = {lead_id: assign_variant(lead_id, VARIANTS) for lead_id in leads}
    assert set(by_rule.values()) == {"A", "B"}  # the four leads cover both variants
    # An enrolment made before the variants changed keeps what it was given: the preview says so.
    enrolled = leads[0]
    given = "A" if by_rule[enrolled] == "B" else "B"
    seed.enrol(enrolled, variant=given)
    for lead_id in leads:
        result = preview(seed.db, runtime, actor, seed.campaign_id, lead_id)
        assert result.variant == (given if lead_id == enrolled else by_rule[lead_id])


def test_preview_of_any_step_and_variant(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.campaign(
        steps=[{"delay_hours": 0}, {"delay_hours": 48, "prompt": "Ask a question about {company}."}],
        variants=[{"name": "A", "prompt": "Keep it brief."},
                  {"name": "B", "prompt": "Open with the research fact."}],
    )
    lead_id = seed.lead(company="Pretend Pharma", industry="Logistics")
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    drafts = {}
    for step in (0, 1):
        for variant in ("A", "B"):
            result = preview(seed.db, runtime, actor, seed.campaign_id, lead_id, step=step, variant=variant)
            assert result.status == "ready" and result.guard_passed, result.problems
            assert result.variant == variant and result.body
            drafts[step, variant] = result.body
    # Four different drafts: the variants and the follow-up's own instructions show.
    assert len(set(drafts.values())) == 4
    assert "30% more meetings" not in drafts[0, "A"]  # brief
    assert drafts[0, "A"].endswith("Reply STOP to opt out")
    assert "Is getting more replies from cold outreach a priority at Pretend Pharma" in drafts[1, "A"]
    assert "pretend Pharma" not in " ".join(drafts.values())
    with pytest.raises(ValidationError, match="has no step 3: it has 2"):
        preview(seed.db, runtime, actor, seed.campaign_id, lead_id, step=2)
    with pytest.raises(ValidationError, match="has no variant 'C': it has A, B"):
        preview(seed.db, runtime, actor, seed.campaign_id, lead_id, variant="C")
