"""The one place chat models are built from the settings: `offline` or `openai` (ChatOpenAI).

No module-level singletons: a factory is made per runtime and caches its models per
(model, temperature) for its own lifetime. ChatOpenAI is thread-safe for `invoke`.
"""

from __future__ import annotations

import threading

from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from core.config import ConfigError, Settings
from core.llm.offline import OfflineChatModel


def _takes_temperature(model: str) -> bool:
    # The o-series reasoning models accept only their default temperature.
    return not (model.startswith("o") and model[1:2].isdigit())


def openai_api_key(settings: Settings) -> str:
    """The key, or a ConfigError saying how to set it."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key:
        raise ConfigError(
            "LEADFLOW_LLM_PROVIDER is 'openai' but OPENAI_API_KEY is not set; set it in the "
            "environment or .streamlit/secrets.toml, or use LEADFLOW_LLM_PROVIDER=offline"
        )
    return key


def build_openai_model(settings: Settings, *, model: str, temperature: float) -> ChatOpenAI:
    """ChatOpenAI for the campaign's model: bounded timeout; retries are ours (core.llm.calls)."""
    key = openai_api_key(settings)
    kwargs: dict[str, object] = {}
    if _takes_temperature(model):
        kwargs["temperature"] = temperature
    return ChatOpenAI(
        model=model,
        api_key=key,  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout_seconds,
        # The client's own retries would retry insufficient_quota and ignore our bound on
        # Retry-After; core.llm.calls retries explicitly instead.
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


class ModelFactory:
    """Chat models for one settings object, by campaign model and temperature."""

    def __init__(self, settings: Settings) -> None:
        if settings.llm_provider == "openai":
            # Refused here, when a runner or a preview starts, not lead by lead at the first call.
            openai_api_key(settings)
        self.settings = settings
        self.provider = settings.llm_provider
        self._models: dict[tuple[str, float], BaseChatModel] = {}
        self._lock = threading.Lock()

    def __call__(self, model: str, temperature: float) -> BaseChatModel:
        key = (model, float(temperature))
        with self._lock:
            cached = self._models.get(key)
            if cached is None:
                cached = (
                    OfflineChatModel()
                    if self.provider == "offline"
                    else build_openai_model(self.settings, model=model, temperature=temperature)
                )
                self._models[key] = cached
            return cached
