"""What a pipeline run needs besides the database: settings, models, senders, the gate, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from core import metrics, tracing
from core.channels.base import Sender
from core.channels.registry import senders_from_settings
from core.config import Settings
from core.db import Database
from core.gate import NO_LIMITS, BudgetExceeded, CallGate, CallTooLarge, DatabaseGate
from core.llm.calls import ModelCallFailed, ModelReply, call_model
from core.llm.factory import ModelFactory
from core.llm.paced import PacedModels
from core.llm.prices import ModelPrice, load_price_table, price_for
from core.llm.records import ModelCallRecord


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PipelineRuntime:
    """Shared by every run of a worker (thread-safe); tests build one with a frozen clock.

    `models` is a ModelFactory (model, temperature -> chat model) or, in tests, one chat model
    used for every campaign; `provider` names what the calls are recorded under.
    """

    settings: Settings
    models: ModelFactory | BaseChatModel
    senders: dict[str, Sender]
    gate: CallGate = NO_LIMITS
    now: Callable[[], datetime] = utc_now
    provider: str = "offline"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        db: Database,
        *,
        gate: CallGate = NO_LIMITS,
        now: Callable[[], datetime] = utc_now,
    ) -> PipelineRuntime:
        """The configured models and senders; the outbox sender records into `db`."""
        return cls(
            settings=settings,
            models=ModelFactory(settings),
            senders=senders_from_settings(settings, db),
            gate=gate,
            now=now,
            provider=settings.llm_provider,
        )

    def chat_model(self, model: str, temperature: float) -> BaseChatModel:
        if isinstance(self.models, BaseChatModel):
            return self.models
        return self.models(model, temperature)

    def price(self, campaign_model: str, overrides: dict[str, Any]) -> ModelPrice:
        """The campaign model's price, whichever provider answers: the offline model's estimated
        tokens are billed as the campaign's model would bill them, so a demo shows what the same
        run would cost (the `provider` column of llm_calls tells the two apart)."""
        table = load_price_table(self.settings.price_table_path)
        return price_for(campaign_model, table, overrides)

    def call_model(
        self,
        messages: list[BaseMessage],
        *,
        node: str,
        model: str,
        temperature: float,
        tenant_id: int,
        price_overrides: dict[str, Any],
        campaign_id: int | None,
        max_output_tokens: int,
    ) -> ModelReply:
        """One model call of a run (the outreach pipeline's or the reply agent's): through this
        runtime's model, price table, call gate and retry setting, recorded for its costs,
        counted in the model metrics and traced as a GenAI `chat` span."""
        started = perf_counter()
        outcome, record = "failed", None
        attributes = _chat_attributes(self.provider, model, node, temperature, max_output_tokens)
        with tracing.span(f"chat {model}", attributes, kind=tracing.SpanKind.CLIENT) as span:
            try:
                reply = call_model(
                    self.chat_model(model, temperature),
                    messages,
                    node=node,
                    provider=self.provider,
                    model=model,
                    price=self.price(model, price_overrides),
                    gate=self.gate,
                    tenant_id=tenant_id,
                    campaign_id=campaign_id,
                    max_retries=self.settings.llm_max_retries,
                    max_output_tokens=max_output_tokens,
                )
                outcome, record = "ok", reply.record
                return reply
            except (BudgetExceeded, CallTooLarge) as exc:  # the gate refused: nothing was called
                outcome = "refused"
                tracing.failed(span, type(exc).__name__, str(exc))
                raise
            except ModelCallFailed as exc:
                record = exc.record
                tracing.failed(span, "ModelCallFailed", exc.reason)
                raise
            finally:
                _measure(span, self.provider, model, outcome, record, perf_counter() - started)

    def sender(self, channel: str) -> Sender:
        return self.senders[channel]


def gated_runtime(db: Database, settings: Settings, *, owner: str | None = None) -> PipelineRuntime:
    """A pipeline runtime whose model calls and sends pass the database-shared gate.

    The job runner's workers use it, and so does the dashboard's preview: a preview's calls count
    against the same rate limits, campaign cap and monthly budget as a run's.
    """
    paced = settings.llm_provider != "offline"  # the offline model has no provider to pace
    gate = DatabaseGate(db, settings, owner=owner, wait_at_send=paced)
    runtime = PipelineRuntime.from_settings(settings, db, gate=gate)
    if paced:
        runtime.models = PacedModels(settings, gate)
    return runtime


def _chat_attributes(
    provider: str, model: str, node: str, temperature: float, max_output_tokens: int
) -> dict[str, Any]:
    """A model call's span attributes (the GenAI semantic conventions); none when not traced."""
    if not tracing.active():
        return {}
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.max_tokens": max_output_tokens,
        "leadflow.node": node,
    }


def _measure(
    span: tracing.Span | None,
    provider: str,
    model: str,
    outcome: str,
    record: ModelCallRecord | None,
    seconds: float,
) -> None:
    """A model call in the metrics and on its span: outcome, tokens, cost, duration."""
    input_tokens = record.input_tokens if record else 0
    output_tokens = record.output_tokens if record else 0
    cost = record.cost_microusd if record else 0
    metrics.count_model_call(
        provider=provider,
        model=model,
        outcome=outcome,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_microusd=cost,
        seconds=seconds,
    )
    if span is not None:
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        span.set_attribute("leadflow.cost_usd", cost / 1_000_000)
