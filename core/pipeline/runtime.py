"""What a pipeline run needs besides the database: settings, models, senders, the gate, a clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from core.channels.base import Sender
from core.channels.registry import senders_from_settings
from core.config import Settings
from core.db import Database
from core.llm.factory import ModelFactory
from core.llm.prices import ModelPrice, load_price_table, price_for
from core.pipeline.limits import NO_LIMITS, CallGate

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph


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
    _graph: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

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

    def sender(self, channel: str) -> Sender:
        return self.senders[channel]

    def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The compiled pipeline, built once per runtime (compiled graphs are thread-safe)."""
        with self._lock:
            if self._graph is None:
                from core.pipeline.graph import build_pipeline

                self._graph = build_pipeline()
            return self._graph
