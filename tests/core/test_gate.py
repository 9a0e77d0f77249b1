"""The database-shared call gate: paced rate limits shared by workers, and budget reservations."""

from __future__ import annotations

import math
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import openai
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from sqlalchemy import func, select, update

from core.campaign_runs import start_campaign
from core.campaigns import create_campaign
from core.config import Settings
from core.db import Database
from core.gate import (
    RATE_DECREASE,
    RATE_FLOOR,
    RATE_HOLD_SECONDS,
    RATE_INCREASE,
    BudgetExceeded,
    CallTooLarge,
    DatabaseGate,
    ModelCallReservation,
    campaign_sends_key,
    channel_sends_key,
    model_requests_key,
    model_tokens_key,
    release_expired_reservations,
    renew_budget_reservations,
    spend_month,
)
from core.llm.paced import PacedChatModel
from core.models import BudgetReservation, Campaign, RateLimit, Tenant, TenantSpend
from tests.factories import insert_leads, make_actor, make_tenant

T0 = 1_800_000_000.0


class FrozenClock:
    """A clock that moves only when told to, and a sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


def _gate(db: Database, clock: FrozenClock, **settings: object) -> DatabaseGate:
    configured = db.settings.model_copy(update=settings) if settings else db.settings
    return DatabaseGate(db, configured, clock=clock, sleep=clock.sleep)


def _campaign(db: Database, **fields: Any) -> tuple[int, int]:
    actor = make_actor(db, make_tenant(db))
    insert_leads(db, actor.tenant_id, 1)  # an empty audience does not start
    campaign = create_campaign(db, actor, name="Q4", channel="sms", **fields)
    start_campaign(db, actor, campaign.id)
    return actor.tenant_id, campaign.id


def test_takes_are_paced_at_the_rate_with_no_burst(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    starts = [gate.take("k", 1.0, 10.0) - T0 for _ in range(5)]
    assert starts == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    clock.now += 60  # an idle minute earns no burst: the next one starts now, the one after paced
    assert [gate.take("k", 1.0, 10.0) - clock.now for _ in range(2)] == pytest.approx([0.0, 0.1])


def test_a_cost_takes_its_share_of_the_rate(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    assert gate.take("tokens", 500.0, 1000.0) == pytest.approx(T0)
    assert gate.take("tokens", 100.0, 1000.0) == pytest.approx(T0 + 0.5)


def test_no_rate_means_no_limit_and_no_row(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    assert [gate.take("free", 1.0, 0.0) for _ in range(3)] == [T0, T0, T0]
    with db.session(system=True, read_only=True) as session:
        assert session.scalar(select(func.count(RateLimit.key))) == 0


def test_two_workers_share_one_limit(settings: Settings) -> None:
    clock = FrozenClock()
    first, second = Database(settings), Database(settings)
    try:
        gates = [_gate(first, clock), _gate(second, clock)]
        starts = [gates[n % 2].take("shared", 1.0, 4.0) - T0 for n in range(6)]
    finally:
        first.dispose()
        second.dispose()
    assert starts == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.25])


def test_concurrent_takes_never_get_the_same_slot(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    starts: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        start = gate.take("busy", 1.0, 100.0)
        with lock:
            starts.append(round(start - T0, 6))

    threads = [threading.Thread(target=take) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(starts) == pytest.approx([n / 100 for n in range(24)])


def test_sends_wait_for_the_campaign_rate_then_the_channel_rate(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db, sends_per_minute=30)
    gate = _gate(db, clock, sms_provider="twilio", sms_sends_per_second=1.0)
    for _ in range(3):
        gate.acquire_send(tenant_id=tenant_id, campaign_id=campaign_id, channel="sms")
    # 30 per minute is one every 2 s; the channel's one per second is then never the limit.
    assert clock.slept == [2.0, 1.0, 4.0, 2.0]
    with db.session(system=True, read_only=True) as session:
        keys = set(session.scalars(select(RateLimit.key)))
    assert keys == {campaign_sends_key(campaign_id), channel_sends_key("sms")}


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_the_outbox_has_no_channel_send_limit(db: Database, channel: str) -> None:
    """Nothing leaves the machine, so only the campaign's own rate paces the outbox."""
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db)
    gate = _gate(db, clock, sms_sends_per_second=1.0, email_sends_per_second=1.0)
    for _ in range(5):
        gate.acquire_send(tenant_id=tenant_id, campaign_id=campaign_id, channel=channel)
    assert clock.slept == []


def test_a_model_call_waits_for_requests_and_tokens_and_settles_the_error(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db)
    gate = _gate(
        db, clock, llm_provider="openai", llm_requests_per_minute=120.0, llm_tokens_per_minute=60_000.0
    )
    reservations = [
        gate.reserve_model_call(
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            model="m",
            estimated_tokens=500,
            estimated_cost_microusd=10,
        )
        for _ in range(2)
    ]
    # Two requests per second: the second waits 0.5 s; 500 tokens at 1,000/s take 0.5 s each.
    assert clock.slept == [0.5, 0.5]
    gate.settle_model_call(reservations[0], input_tokens=700, output_tokens=300, cost_microusd=12)
    with db.session(system=True, read_only=True) as session:
        next_free = session.scalar(
            select(RateLimit.next_free_at).where(RateLimit.key == model_tokens_key("m"))
        )
        spent = session.scalar(select(Campaign.spent_microusd).where(Campaign.id == campaign_id))
    assert next_free == pytest.approx(T0 + 1.0 + 0.5)  # 500 tokens more than estimated
    assert spent == 12


def test_the_budget_cap_refuses_the_call_that_would_exceed_it_and_pauses(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db, budget_cap_microusd=1_000)
    gate = _gate(db, clock)

    def reserve(estimate: int) -> object:
        return gate.reserve_model_call(
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            model="m",
            estimated_tokens=10,
            estimated_cost_microusd=estimate,
        )

    held = reserve(600)
    with pytest.raises(BudgetExceeded, match="budget cap of"):
        reserve(500)  # 600 held + 500 > 1,000: nothing is spent
    with db.session(system=True, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "paused"
        assert "budget cap" in (campaign.status_reason or "")
    gate.settle_model_call(held, input_tokens=5, output_tokens=5, cost_microusd=300)
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).values(status="running"))
    assert isinstance(reserve(700), ModelCallReservation)  # 300 spent + 700 fits exactly


def test_a_dead_workers_reservation_stops_counting_when_it_expires(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db, budget_cap_microusd=1_000)
    gate = _gate(db, clock)
    gate.reserve_model_call(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        model="m",
        estimated_tokens=10,
        estimated_cost_microusd=900,
    )
    later = datetime.now(UTC) + timedelta(seconds=db.settings.lease_seconds + 1)
    assert release_expired_reservations(db, now=later) == 1
    with db.session(system=True, read_only=True) as session:
        assert session.scalar(select(func.count(BudgetReservation.id))) == 0


def test_many_calls_at_once_never_exceed_the_cap_by_more_than_one_estimate(db: Database) -> None:
    cap, estimate = 20_000, 700
    tenant_id, campaign_id = _campaign(db, budget_cap_microusd=cap)
    gate = DatabaseGate(
        db, db.settings.model_copy(update={"llm_requests_per_minute": 0.0, "llm_tokens_per_minute": 0.0})
    )
    refused = threading.Event()

    def spend(seed: int) -> None:
        rng = random.Random(seed)
        while not refused.is_set():
            try:
                reservation = gate.reserve_model_call(
                    tenant_id=tenant_id,
                    campaign_id=campaign_id,
                    model="m",
                    estimated_tokens=10,
                    estimated_cost_microusd=estimate,
                )
            except BudgetExceeded:
                refused.set()
                return
            gate.settle_model_call(
                reservation,
                input_tokens=5,
                output_tokens=5,
                cost_microusd=rng.randint(estimate // 2, estimate),
            )

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.session(system=True, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
    assert campaign is not None and campaign.status == "paused"
    assert campaign.spent_microusd <= cap
    # Not stopped early either. The calls in flight hold their estimates against the cap, so
    # the refusal can come while every other thread holds one: at most one estimate per thread
    # is left unspent (the bound this test held before, cap - 2 estimates, assumed the threads
    # never overlapped, and failed on a loaded machine).
    assert campaign.spent_microusd > cap - len(threads) * estimate


def test_a_retried_request_takes_a_new_slot_the_first_uses_the_reserved_one(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db)
    gate = _gate(db, clock, llm_provider="openai", llm_requests_per_minute=60.0, llm_tokens_per_minute=0.0)
    model = PacedChatModel(inner=FakeListChatModel(responses=["one", "two"]), gate=gate, paced_as="m")
    gate.reserve_model_call(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        model="m",
        estimated_tokens=10,
        estimated_cost_microusd=0,
    )
    assert model.invoke("hello").content == "one"  # the reserved slot: no wait
    assert model.invoke("again").content == "two"  # a retry: the next slot, one second on
    assert clock.slept == [1.0]


def test_the_offline_model_has_no_provider_limits(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db)
    gate = _gate(db, clock, llm_provider="offline", llm_requests_per_minute=1.0)
    for _ in range(3):
        gate.reserve_model_call(
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            model="offline",
            estimated_tokens=10,
            estimated_cost_microusd=0,
        )
    assert clock.slept == []


def test_a_live_workers_reservations_are_renewed_so_a_slow_call_keeps_counting(db: Database) -> None:
    clock = FrozenClock()
    tenant_id, campaign_id = _campaign(db, budget_cap_microusd=1_000)
    gate = DatabaseGate(db, db.settings, clock=clock, sleep=clock.sleep, owner="worker-1")
    gate.reserve_model_call(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        model="m",
        estimated_tokens=10,
        estimated_cost_microusd=900,
    )
    later = datetime.now(UTC) + timedelta(seconds=db.settings.lease_seconds * 3)
    assert (
        renew_budget_reservations(db, owner="worker-1", now=later, lease_seconds=db.settings.lease_seconds)
        == 1
    )
    assert release_expired_reservations(db, now=later) == 0
    with pytest.raises(BudgetExceeded):  # the 900 still held leaves no room for 200 more
        gate.reserve_model_call(
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            model="m",
            estimated_tokens=10,
            estimated_cost_microusd=200,
        )


# -- AIMD: the model's rate adapts to 429s ----------------------------------------------------


def _factor(db: Database, key: str) -> float:
    with db.session(system=True, read_only=True) as session:
        return float(session.scalar(select(RateLimit.rate_factor).where(RateLimit.key == key)) or 0.0)


def test_a_429_cuts_the_rate_once_per_hold_and_requests_win_it_back_additively(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    key = model_requests_key("m")
    assert gate.take(key, 1.0, 10.0) == pytest.approx(T0)  # the full rate: one every 0.1 s
    gate.model_rate_limited("m", retry_after=None)
    assert _factor(db, key) == pytest.approx(RATE_DECREASE)
    gate.model_rate_limited("m", retry_after=None)  # an echo of the same congestion: no second cut
    assert _factor(db, key) == pytest.approx(RATE_DECREASE)
    # The next requests are spaced at the cut rate (each first wins RATE_INCREASE back).
    first, second = gate.take(key, 1.0, 10.0), gate.take(key, 1.0, 10.0)
    assert second - first == pytest.approx(0.1 / (RATE_DECREASE + RATE_INCREASE), abs=1e-6)
    clock.now += RATE_HOLD_SECONDS  # a 429 after the hold is new congestion: cut again
    gate.model_rate_limited("m", retry_after=None)
    cut_twice = (RATE_DECREASE + 2 * RATE_INCREASE) * RATE_DECREASE
    assert _factor(db, key) == pytest.approx(cut_twice)
    for _ in range(100):
        gate.take(key, 1.0, 10.0)
    assert _factor(db, key) == pytest.approx(cut_twice + 100 * RATE_INCREASE)
    for _ in range(int(1 / RATE_INCREASE)):
        gate.take(key, 1.0, 10.0)
    assert _factor(db, key) == 1.0  # never above the configured rate


def test_no_second_cut_until_the_slots_handed_out_before_the_first_are_used(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    key = model_requests_key("m")
    for _ in range(30):  # thirty callers queued: slots for the next three seconds, at the old rate
        gate.take(key, 1.0, 10.0)
    gate.model_rate_limited("m", retry_after=None)
    clock.now += 2.0  # past the hold's second, but the old rate's slots are still being used
    gate.model_rate_limited("m", retry_after=None)
    assert _factor(db, key) == pytest.approx(RATE_DECREASE)
    clock.now += 1.0  # the queue handed out before the cut is used: a 429 now answers the new rate
    gate.model_rate_limited("m", retry_after=None)
    assert _factor(db, key) == pytest.approx(RATE_DECREASE**2)


def test_the_retry_after_sets_the_hold_and_a_long_one_holds_every_worker(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock)
    key = model_requests_key("m")
    gate.take(key, 1.0, 10.0)
    gate.model_rate_limited("m", retry_after=1.5)  # short: congestion, the rate is cut only
    assert gate.take(key, 1.0, 10.0) == pytest.approx(T0 + 0.1)
    clock.now += 1.2  # still inside the 1.5 s hold
    gate.model_rate_limited("m", retry_after=1.5)
    assert _factor(db, key) == pytest.approx((RATE_DECREASE + RATE_INCREASE) ** 1)
    clock.now += 0.3
    gate.model_rate_limited("m", retry_after=20.0)  # long: the window is spent, all wait it out
    assert gate.take(key, 1.0, 10.0) == pytest.approx(clock.now + 20.0)


def test_the_cut_is_shared_by_every_worker_and_has_a_floor(settings: Settings) -> None:
    clock = FrozenClock()
    first, second = Database(settings), Database(settings)
    try:
        gates = [_gate(first, clock), _gate(second, clock)]
        key = model_requests_key("m")
        gates[1].take(key, 1.0, 10.0)
        gates[0].model_rate_limited("m", retry_after=None)
        start = gates[1].take(key, 1.0, 10.0)
        assert gates[1].take(key, 1.0, 10.0) - start == pytest.approx(
            0.1 / (RATE_DECREASE + RATE_INCREASE), abs=1e-6
        )
        cuts_to_the_floor = math.ceil(math.log(RATE_FLOOR) / math.log(RATE_DECREASE))
        for _ in range(cuts_to_the_floor + 10):
            clock.now += RATE_HOLD_SECONDS
            gates[_ % 2].model_rate_limited("m", retry_after=None)
        assert _factor(first, key) == pytest.approx(RATE_FLOOR)
    finally:
        first.dispose()
        second.dispose()


def test_429s_reach_the_gate_from_the_paced_model_but_no_credit_does_not(db: Database) -> None:
    clock = FrozenClock()
    gate = _gate(db, clock, llm_provider="openai", llm_requests_per_minute=600.0, llm_tokens_per_minute=0.0)

    def provider_error(code: str, retry_after: str | None) -> openai.RateLimitError:
        headers = {"retry-after": retry_after} if retry_after else {}
        response = httpx2.Response(429, headers=headers, request=httpx2.Request("POST", "http://x/v1"))
        return openai.RateLimitError("429", response=response, body={"error": {"code": code}})

    class Refusing(FakeListChatModel):
        error: Exception

        def _call(self, *args: Any, **kwargs: Any) -> str:
            raise self.error

    key = model_requests_key("m")
    gate.take(key, 1.0, 10.0)
    quota = PacedChatModel(
        inner=Refusing(responses=[""], error=provider_error("insufficient_quota", None)),
        gate=gate,
        paced_as="m",
    )
    with pytest.raises(openai.RateLimitError):
        quota.invoke("hello")
    assert _factor(db, key) > RATE_DECREASE  # no credit is not congestion
    limited = PacedChatModel(
        inner=Refusing(responses=[""], error=provider_error("rate_limit_exceeded", "9")),
        gate=gate,
        paced_as="m",
    )
    with pytest.raises(openai.RateLimitError):
        limited.invoke("hello")
    assert _factor(db, key) < RATE_DECREASE + 0.01
    assert gate.take(key, 1.0, 10.0) >= clock.now + 9.0  # Retry-After 9 s: every worker waits


# -- budgets: a call too large for a whole budget, the tenant's monthly budget -----------------


def _reserve(gate: DatabaseGate, tenant_id: int, campaign_id: int | None, estimate: int) -> object:
    return gate.reserve_model_call(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        model="m",
        estimated_tokens=10,
        estimated_cost_microusd=estimate,
    )


def _statuses(db: Database, tenant_id: int) -> dict[int, tuple[str, str | None]]:
    with db.session(system=True, read_only=True) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.status, Campaign.status_reason).where(
                Campaign.tenant_id == tenant_id
            )
        )
        return {row.id: (row.status, row.status_reason) for row in rows}


def test_a_call_larger_than_the_whole_cap_fails_alone_one_larger_than_what_is_left_pauses(
    db: Database,
) -> None:
    tenant_id, campaign_id = _campaign(db, budget_cap_microusd=1_000)
    gate = _gate(db, FrozenClock())
    with pytest.raises(CallTooLarge, match=r"more than the campaign.s whole budget cap of \$0\.0010"):
        _reserve(gate, tenant_id, campaign_id, 1_001)
    assert _statuses(db, tenant_id)[campaign_id][0] == "running"  # nothing paused, nothing held
    held = _reserve(gate, tenant_id, campaign_id, 400)
    with pytest.raises(BudgetExceeded):
        _reserve(gate, tenant_id, campaign_id, 601)  # fits the cap, not what is left of it
    assert _statuses(db, tenant_id)[campaign_id][0] == "paused"
    gate.settle_model_call(held, input_tokens=5, output_tokens=5, cost_microusd=400)


def test_the_monthly_budget_counts_every_campaigns_reservations_and_spend_and_pauses_them_all(
    db: Database,
) -> None:
    actor = make_actor(db, make_tenant(db))
    insert_leads(db, actor.tenant_id, 1)  # an empty audience does not start
    campaigns = []
    for name in ("one", "two", "draft"):
        campaign = create_campaign(db, actor, name=name, channel="sms")
        if name != "draft":
            start_campaign(db, actor, campaign.id)
        campaigns.append(campaign.id)
    other = make_actor(db, make_tenant(db, "Other"), username="other")
    other_tenant = other.tenant_id
    insert_leads(db, other_tenant, 1)
    other_campaign = create_campaign(db, other, name="theirs", channel="sms").id
    start_campaign(db, other, other_campaign)
    with db.session(system=True) as session, session.begin():
        session.execute(
            update(Tenant).where(Tenant.id == actor.tenant_id).values(monthly_budget_microusd=1_000)
        )
        session.execute(update(Tenant).where(Tenant.id == other_tenant).values(monthly_budget_microusd=1_000))
        # Last month's spend does not count against this month's budget.
        session.add(TenantSpend(tenant_id=actor.tenant_id, month="2000-01", spent_microusd=5_000))
    gate = _gate(db, FrozenClock())
    first = _reserve(gate, actor.tenant_id, campaigns[0], 500)
    gate.settle_model_call(first, input_tokens=5, output_tokens=5, cost_microusd=300)  # 300 spent
    held = _reserve(gate, actor.tenant_id, campaigns[1], 400)  # 300 spent + 400 held
    with pytest.raises(CallTooLarge, match=r"whole monthly budget of \$0\.0010"):
        _reserve(gate, actor.tenant_id, campaigns[0], 1_001)
    assert {s for s, _ in _statuses(db, actor.tenant_id).values()} == {"running", "draft"}
    with pytest.raises(BudgetExceeded, match="monthly budget of"):
        _reserve(gate, actor.tenant_id, campaigns[0], 301)  # 300 + 400 + 301 > 1,000
    statuses = _statuses(db, actor.tenant_id)
    assert [statuses[c][0] for c in campaigns] == ["paused", "paused", "draft"]
    assert all(
        "monthly budget of $0.0010 reached ($0.0003 spent this month)" in (statuses[c][1] or "")
        for c in campaigns[:2]
    )
    assert _statuses(db, other_tenant)[other_campaign][0] == "running"  # its own budget, untouched
    assert isinstance(_reserve(gate, other_tenant, other_campaign, 1_000), ModelCallReservation)
    gate.settle_model_call(held, input_tokens=5, output_tokens=5, cost_microusd=0)
    assert isinstance(_reserve(gate, actor.tenant_id, None, 700), ModelCallReservation)  # 300 + 700
    with db.session(system=True, read_only=True) as session:
        spend = dict(
            session.execute(
                select(TenantSpend.month, TenantSpend.spent_microusd).where(
                    TenantSpend.tenant_id == actor.tenant_id
                )
            ).all()
        )
    assert spend == {"2000-01": 5_000, spend_month(datetime.now(UTC)): 300}


def test_settled_spend_adds_up_under_concurrent_settles(db: Database) -> None:
    tenant_id, campaign_id = _campaign(db)
    gate = DatabaseGate(db, db.settings)

    def settle() -> None:
        for _ in range(25):
            reservation = _reserve(gate, tenant_id, campaign_id, 10)
            gate.settle_model_call(reservation, input_tokens=1, output_tokens=1, cost_microusd=7)

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.session(system=True, read_only=True) as session:
        assert (
            session.scalar(select(TenantSpend.spent_microusd).where(TenantSpend.tenant_id == tenant_id))
            == 4 * 25 * 7
        )


def test_with_wait_at_send_the_first_request_waits_for_its_slot_right_before_it_is_sent(
    db: Database,
) -> None:
    clock = FrozenClock()
    settings = db.settings.model_copy(
        update={"llm_provider": "openai", "llm_requests_per_minute": 120.0, "llm_tokens_per_minute": 0.0}
    )
    gate = DatabaseGate(db, settings, clock=clock, sleep=clock.sleep, wait_at_send=True)
    waits_when_sent: list[list[float]] = []

    class Recording(FakeListChatModel):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            waits_when_sent.append(list(clock.slept))
            return "sent"

    model = PacedChatModel(inner=Recording(responses=["sent"]), gate=gate, paced_as="m")
    tenant_id, campaign_id = _campaign(db)
    for _ in range(2):
        _reserve(gate, tenant_id, campaign_id, 0)
        assert clock.slept == []  # the reservation itself never waits for the request slot
        model.invoke("hello")
    # Two a second: the second call's request waited its half second inside the paced model,
    # just before it was sent, and only once.
    assert waits_when_sent == [[], [0.5]] and clock.slept == [0.5]


class StallingClock(FrozenClock):
    """Its sleeps last longer than asked by `stall`: a process the machine did not run on time."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = 0.0

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.now += seconds + self.stall


@pytest.mark.parametrize(("stall", "retaken"), [(0.01, False), (0.2, True)])
def test_a_request_that_wakes_long_after_its_slot_takes_a_fresh_one(
    db: Database, stall: float, retaken: bool
) -> None:
    clock = StallingClock()
    settings = db.settings.model_copy(
        update={"llm_provider": "openai", "llm_requests_per_minute": 600.0, "llm_tokens_per_minute": 0.0}
    )
    gate = DatabaseGate(db, settings, clock=clock, sleep=clock.sleep, wait_at_send=True)
    sent_at: list[float] = []

    class Recording(FakeListChatModel):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            sent_at.append(clock.now)
            return "sent"

    model = PacedChatModel(inner=Recording(responses=["sent"]), gate=gate, paced_as="m")
    tenant_id, campaign_id = _campaign(db)
    _reserve(gate, tenant_id, campaign_id, 0)  # slot T0
    model.invoke("first")
    _reserve(gate, tenant_id, campaign_id, 0)  # slot T0 + 0.1
    clock.stall = stall
    model.invoke("second")
    with db.session(system=True, read_only=True) as session:
        next_free = session.scalar(
            select(RateLimit.next_free_at).where(RateLimit.key == model_requests_key("m"))
        )
    if retaken:  # woke at T0 + 0.3, 0.2 s late: it took the next free slot (now) and went then
        assert sent_at == pytest.approx([T0, T0 + 0.3], abs=1e-6)
        assert next_free == pytest.approx(T0 + 0.4, abs=1e-3)
    else:  # 10 ms late is within the tolerance: sent on its own slot, nothing taken
        assert sent_at == pytest.approx([T0, T0 + 0.11], abs=1e-6)
        assert next_free == pytest.approx(T0 + 0.2, abs=1e-3)
