"""Budgets in the pipeline: a lead too large for a whole cap fails alone; previews pass the gate."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.config import Settings
from core.gate import NO_LIMITS, BudgetExceeded, DatabaseGate, model_requests_key, spend_month
from core.models import BudgetReservation, Campaign, LLMCall, RateLimit, Role, Tenant, TenantSpend
from core.pipeline.runtime import gated_runtime
from core.pipeline.service import PipelineRuntime, preview, process_campaign_lead
from tests.conftest import make_settings
from tests.core.pipeline.conftest import NOW, WORKER, Seed
from tests.factories import make_actor
from tests.support.fake_openai import FakeOpenAI


class EstimateProbe:
    """A gate that lets every call through and remembers what each was estimated to cost."""

    def __init__(self) -> None:
        self.estimates: list[int] = []

    def reserve_model_call(self, **kwargs: Any) -> object:
        self.estimates.append(kwargs["estimated_cost_microusd"])
        return None

    def settle_model_call(self, reservation: object, **kwargs: Any) -> None:
        return None

    def acquire_send(self, **kwargs: Any) -> None:
        return None


def _big_lead(seed: Seed) -> int:
    """A lead whose prompt is several times a usual one's: every field full, long notes."""
    return seed.lead(
        phone="+12125550777",
        email="big@x.example",
        last_name="L" * 120,
        company="Analytical Engines " + "and Difference Engines " * 7,
        title="Chief Technology Officer " * 8,
        city="Springfield " * 10,
        notes="Met at the expo; asked about pricing for their fleet. " * 40,
    )


def test_a_lead_whose_call_alone_exceeds_the_whole_cap_fails_alone_and_the_campaign_goes_on(
    seed: Seed, settings: Settings
) -> None:
    # Input tokens are what differ between the leads: price only them, and price them high.
    seed.tenant(price_overrides={"gpt-4o-mini": {"input": 100.0, "output": 0.0}})
    normal, big = seed.lead(), _big_lead(seed)
    probe = EstimateProbe()
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    estimates = []
    for lead_id in (normal, big):
        probe.estimates.clear()
        runtime = PipelineRuntime.from_settings(settings, seed.db, gate=probe, now=lambda: NOW)
        preview(seed.db, runtime, actor, seed.campaign_id, lead_id)
        estimates.append(probe.estimates[0])  # the first draft's (a regeneration adds feedback)
    normal_cost, big_cost = estimates
    assert big_cost > 1.5 * normal_cost  # the test's premise: the big lead's prompt is far larger
    cap = (normal_cost + big_cost) // 2  # holds the usual lead, never the big one
    seed.campaign(budget_cap_microusd=cap, spent_microusd=0)
    runtime = gated_runtime(seed.db, settings)
    runtime.now = lambda: NOW
    outcomes = {}
    for lead_id in (big, normal):
        enrolment = seed.enrol(lead_id)
        outcomes[lead_id] = (
            process_campaign_lead(seed.db, runtime, enrolment, lease_owner=WORKER),
            enrolment,
        )
    big_status, big_enrolment = outcomes[big]
    assert big_status == "failed"
    error = seed.enrolment(big_enrolment).error or ""
    assert "more than the campaign's whole budget cap" in error and "shorten the lead's notes" in error
    assert outcomes[normal][0] == "sent"
    with seed.db.session(system=True, read_only=True) as session:
        campaign = session.get(Campaign, seed.campaign_id)
        assert campaign is not None and campaign.status == "running"
        assert 0 < campaign.spent_microusd <= cap
        assert session.scalar(select(func.count(BudgetReservation.id))) == 0


def test_a_preview_counts_against_the_monthly_budget_and_is_refused_past_it(
    seed: Seed, settings: Settings
) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    lead_id = seed.lead()
    seed.tenant(monthly_budget_microusd=1_000_000)
    runtime = gated_runtime(seed.db, settings)
    result = preview(seed.db, runtime, actor, seed.campaign_id, lead_id)
    assert result.status == "ready" and result.cost_microusd > 0
    with seed.db.session(system=True, read_only=True) as session:
        month_spend = session.scalar(
            select(TenantSpend.spent_microusd).where(TenantSpend.tenant_id == seed.tenant_id)
        )
        assert month_spend == result.cost_microusd
        assert session.scalar(select(func.count(BudgetReservation.id))) == 0
    # The month is spent but for a few microdollars: the preview says so instead of drafting, and
    # the running campaign pauses.
    with seed.db.session(system=True) as session, session.begin():
        session.execute(update(TenantSpend).values(spent_microusd=999_990))
    with pytest.raises(BudgetExceeded, match=r"The preview was not run: the monthly budget of \$\S+ reached"):
        preview(seed.db, runtime, actor, seed.campaign_id, lead_id)
    with seed.db.session(system=True, read_only=True) as session:
        campaign = session.get(Campaign, seed.campaign_id)
        assert campaign is not None and campaign.status == "paused"
        assert "monthly budget" in (campaign.status_reason or "")
        assert session.scalar(select(func.count(LLMCall.id))) == 1  # the refused preview spent nothing


def test_a_preview_passes_the_shared_rate_limit(seed: Seed, settings: Settings) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    lead_id = seed.lead()
    with FakeOpenAI() as server:
        openai = make_settings(
            settings.database_url,
            llm_provider="openai",
            openai_api_key="sk-test",
            openai_base_url=server.base_url,
            llm_requests_per_minute=6.0,
            llm_tokens_per_minute=0.0,
        )
        clock_waits: list[float] = []
        runtime = gated_runtime(seed.db, openai)
        assert isinstance(runtime.gate, DatabaseGate)
        # A clock that stands still: the waits are recorded instead of slept, so they stack up
        # from the first slot exactly, however long the machine takes between two requests.
        frozen = runtime.gate.clock()
        runtime.gate.clock = lambda: frozen
        runtime.gate.sleep = clock_waits.append
        for _ in range(2):
            preview(seed.db, runtime, actor, seed.campaign_id, lead_id)
        requests = server.requests
    # Six a minute: every request after the first waited for its slot, ten seconds after the one
    # before.
    assert requests >= 2 and len(clock_waits) == requests - 1
    assert clock_waits == pytest.approx([10.0 * n for n in range(1, requests)])
    with seed.db.session(system=True, read_only=True) as session:
        assert session.scalar(select(RateLimit.key).where(RateLimit.key == model_requests_key("gpt-4o-mini")))


def test_without_the_gate_a_preview_still_runs(seed: Seed, runtime: PipelineRuntime) -> None:
    """Tests and the command line may preview with NO_LIMITS: nothing is reserved or paced."""
    assert runtime.gate is NO_LIMITS
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    seed.tenant(monthly_budget_microusd=0)
    assert preview(seed.db, runtime, actor, seed.campaign_id, seed.lead()).status == "ready"
    with seed.db.session(system=True) as session, session.begin():
        session.execute(
            update(Tenant).where(Tenant.id == seed.tenant_id).values(monthly_budget_microusd=None)
        )
    assert spend_month(NOW) == "2026-11"
