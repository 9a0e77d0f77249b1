"""Chat models paced by the database-shared gate, request by request (core.gate.DatabaseGate)."""

from __future__ import annotations

from typing import Any

import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict

from core.config import Settings
from core.gate import DatabaseGate
from core.llm.calls import is_quota_error, retry_after_of
from core.llm.factory import ModelFactory


class PacedChatModel(BaseChatModel):
    """A chat model whose every request, retries included, passes the gate's request limit,
    and whose 429s slow that limit down for every worker."""

    inner: BaseChatModel
    gate: Any
    paced_as: str  # the model name whose request limit applies

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return f"paced-{self.inner._llm_type}"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.gate.pace_model_request(self.paced_as)
        try:
            return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except openai.RateLimitError as exc:
            if not is_quota_error(exc):  # no credit is not congestion: slowing down cannot help
                self.gate.model_rate_limited(self.paced_as, retry_after_of(exc))
            raise


class PacedModels(ModelFactory):
    """The model factory of a worker: its models are paced by the gate, request by request."""

    def __init__(self, settings: Settings, gate: DatabaseGate) -> None:
        super().__init__(settings)
        self.gate = gate

    def __call__(self, model: str, temperature: float) -> BaseChatModel:
        return PacedChatModel(inner=super().__call__(model, temperature), gate=self.gate, paced_as=model)
