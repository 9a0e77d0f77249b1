"""The record of one model call, as the pipeline's state carries it to the `llm_calls` table.

Its own module so that what only reads or stores records (the state, the store) does not import
the OpenAI and LangChain clients that make the calls (core.llm.calls).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelCallRecord:
    """What one logical model call used: becomes an `llm_calls` row."""

    node: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_microusd: int
    latency_ms: int
    error: str | None = None
