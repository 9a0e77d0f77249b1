"""The real ChatOpenAI against the local OpenAI-compatible server: retries, timeouts, quota, usage, cost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

import core.llm.calls
from core.config import DATA_DIR, ConfigError, Settings
from core.gate import NO_LIMITS, BudgetExceeded
from core.llm.calls import ModelCallFailed, call_model
from core.llm.factory import ModelFactory
from core.llm.prices import cost_microusd, load_price_table, price_for
from tests.conftest import make_settings
from tests.support.fake_openai import FakeOpenAI

PRICE = price_for("gpt-4o-mini", load_price_table(DATA_DIR / "model_prices.csv"))
MESSAGES = [SystemMessage("You write short messages."), HumanMessage("Say hello to Ada.")]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.llm.calls, "BACKOFF_BASE_SECONDS", 0.01)


def openai_settings(server: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_provider": "openai",
        "openai_api_key": "sk-test",
        "openai_base_url": server.base_url,
        "llm_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return make_settings("sqlite://", **values)


def call(
    settings: Settings,
    *,
    model: str = "gpt-4o-mini",
    temperature: float = 0.3,
    max_retries: int = 2,
    gate: Any = NO_LIMITS,
) -> core.llm.calls.ModelReply:
    chat = ModelFactory(settings)(model, temperature)
    return call_model(
        chat,
        MESSAGES,
        node="compose",
        provider="openai",
        model=model,
        price=PRICE,
        gate=gate,
        tenant_id=1,
        campaign_id=1,
        max_retries=max_retries,
        max_output_tokens=100,
    )


class RecordingGate:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.reserved: list[dict[str, Any]] = []
        self.settled: list[dict[str, Any]] = []

    def reserve_model_call(self, **kwargs: Any) -> object:
        if self.refuse:
            raise BudgetExceeded("budget cap reached")
        self.reserved.append(kwargs)
        return len(self.reserved)

    def settle_model_call(self, reservation: object, **kwargs: Any) -> None:
        self.settled.append({"reservation": reservation, **kwargs})

    def acquire_send(self, **kwargs: Any) -> None:
        return None


def test_usage_and_cost_come_from_the_response(server: FakeOpenAI) -> None:
    server.completion = lambda request: "Hello Ada! Reply STOP to opt out"
    gate = RecordingGate()
    reply = call(openai_settings(server), temperature=0.3, gate=gate)
    assert reply.text == "Hello Ada! Reply STOP to opt out"
    request = server.received[0]
    assert request["model"] == "gpt-4o-mini" and request["temperature"] == 0.3
    usage_in, usage_out = reply.record.input_tokens, reply.record.output_tokens
    assert usage_in > 0 and usage_out == 8  # the server's count: 32 characters / 4
    assert reply.record.cost_microusd == cost_microusd(PRICE, input_tokens=usage_in, output_tokens=usage_out)
    assert gate.settled == [
        {
            "reservation": 1,
            "input_tokens": usage_in,
            "output_tokens": usage_out,
            "cost_microusd": reply.record.cost_microusd,
        }
    ]
    assert gate.reserved[0]["estimated_cost_microusd"] > 0


def test_429_waits_as_retry_after_says(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(core.llm.calls.time, "sleep", waits.append)  # record the wait, skip it
    server.retry_after_seconds = 0.4
    server.fail_next("429")
    reply = call(openai_settings(server))
    assert waits == [0.4]  # the provider's Retry-After, not the 0.01 s backoff
    assert server.requests == 2 and server.rate_limited == 1 and reply.text


def test_retries_are_bounded(server: FakeOpenAI) -> None:
    server.retry_after_seconds = 0.01
    server.fail_next(*["429"] * 10)
    gate = RecordingGate()
    with pytest.raises(ModelCallFailed) as failure:
        call(openai_settings(server), max_retries=2, gate=gate)
    assert server.requests == 3  # the first attempt and two retries
    assert not failure.value.permanent and "429" in failure.value.reason
    assert gate.settled[0]["cost_microusd"] == 0  # settled even when it failed


def test_a_500_is_retried(server: FakeOpenAI) -> None:
    server.fail_next("500")
    assert call(openai_settings(server)).text
    assert server.requests == 2


def test_insufficient_quota_is_not_retried(server: FakeOpenAI) -> None:
    server.fail_next("insufficient_quota", "insufficient_quota", "insufficient_quota")
    with pytest.raises(ModelCallFailed) as failure:
        call(openai_settings(server), max_retries=3)
    assert server.requests == 1
    assert failure.value.permanent and "insufficient_quota" in failure.value.reason


def test_a_hanging_request_times_out(server: FakeOpenAI) -> None:
    # The server never answers on its own (the test's own timeout ends first): the call can only
    # come back because the client's timeout cut both attempts.
    server.hang_seconds = 3600
    server.fail_next("hang", "hang")
    with pytest.raises(ModelCallFailed) as failure:
        call(openai_settings(server, llm_timeout_seconds=0.5), max_retries=1)
    assert "did not answer in time" in failure.value.reason and server.requests == 2
    model = ModelFactory(openai_settings(server, llm_timeout_seconds=0.5))("gpt-4o-mini", 0.3)
    assert model.request_timeout == 0.5  # type: ignore[attr-defined]


def test_budget_refusal_makes_no_request(server: FakeOpenAI) -> None:
    with pytest.raises(BudgetExceeded):
        call(openai_settings(server), gate=RecordingGate(refuse=True))
    assert server.requests == 0


def test_o_series_models_are_sent_without_temperature(server: FakeOpenAI) -> None:
    call(openai_settings(server), model="o4-mini", temperature=0.9)
    assert "temperature" not in server.received[0] and server.received[0]["model"] == "o4-mini"


def test_openai_without_a_key_is_a_config_error() -> None:
    settings = make_settings("sqlite://", llm_provider="openai")
    # Refused when the factory is built (a runner or a preview starting), not at a lead's call.
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        ModelFactory(settings)


def test_the_server_survives_many_concurrent_clients(server: FakeOpenAI) -> None:
    """200 calls from 100 threads all succeed, and they really overlap: the fake server holds each
    request until 10 are in flight together, so a client that serialised its calls would break the
    barrier (after a minute, however busy the machine) instead of being measured against a count."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    together = threading.Barrier(10, timeout=60)

    def answer_in_groups(request: dict[str, Any]) -> str:
        together.wait()
        return "Hello from the group."

    server.completion = answer_in_groups
    settings = openai_settings(server)
    with ThreadPoolExecutor(max_workers=100) as pool:
        replies = list(pool.map(lambda _: call(settings).text, range(200)))
    assert replies == ["Hello from the group."] * 200 and server.requests == 200
    assert not together.broken


@pytest.mark.parametrize("limit", [100, 37])
def test_the_output_limit_is_sent_to_the_provider(server: FakeOpenAI, limit: int) -> None:
    chat = ModelFactory(openai_settings(server))("gpt-4o-mini", 0.3)
    call_model(
        chat,
        MESSAGES,
        node="compose",
        provider="openai",
        model="gpt-4o-mini",
        price=PRICE,
        gate=NO_LIMITS,
        tenant_id=1,
        campaign_id=1,
        max_retries=0,
        max_output_tokens=limit,
    )
    assert server.received[0]["max_completion_tokens"] == limit


def test_a_verbose_model_cannot_spend_past_the_reserved_output(server: FakeOpenAI) -> None:
    server.completion = lambda request: "All work and no play. " * 2_000  # about 11,000 tokens
    gate = RecordingGate()
    reply = call(openai_settings(server), gate=gate)  # reserves for 100 output tokens
    assert reply.record.output_tokens <= 100
    assert reply.record.cost_microusd <= gate.reserved[0]["estimated_cost_microusd"]


def test_the_limit_goes_through_the_gates_paced_model_and_to_o_series_models(
    server: FakeOpenAI, db: Any
) -> None:
    from core.gate import DatabaseGate
    from core.llm.paced import PacedModels

    settings = openai_settings(server)
    models = PacedModels(settings, DatabaseGate(db, settings))
    call_model(
        models("o4-mini", 0.3),
        MESSAGES,
        node="compose",
        provider="openai",
        model="o4-mini",
        price=PRICE,
        gate=NO_LIMITS,
        tenant_id=1,
        campaign_id=None,
        max_retries=0,
        max_output_tokens=55,
    )
    assert server.received[0]["max_completion_tokens"] == 55
