"""One model call: through the gate, with explicit bounded retries, measured and priced.

Retries: a 429 waits as its Retry-After says (capped), a timeout, a connection error or a 5xx
backs off exponentially; `insufficient_quota`, authentication and request errors are not
retried. After the last attempt the failure becomes `ModelCallFailed`, data for the pipeline;
`account` marks the refusals of the account itself (401, 403, `insufficient_quota`), which
pause the campaign instead of failing the lead.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from core.gate import CallGate
from core.llm.offline import OfflineChatModel
from core.llm.prices import ModelPrice, cost_microusd
from core.llm.records import ModelCallRecord
from core.llm.tokens import estimate_prompt_tokens

MAX_RETRY_AFTER_SECONDS = 30.0
BACKOFF_BASE_SECONDS = 0.5


@dataclass(frozen=True)
class ModelReply:
    text: str
    record: ModelCallRecord


class ModelCallFailed(Exception):
    """The provider did not answer usefully; `permanent` says whether trying later can help.

    `account`: the provider refused the account (key, permission, quota), not this request: no
    call of the campaign can succeed until a person fixes it.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        retry_after: float | None,
        record: ModelCallRecord,
        account: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.record = record
        self.account = account


@dataclass(frozen=True)
class _Verdict:
    """How one failed attempt is handled."""

    reason: str
    permanent: bool
    wait: float = 0.0
    account: bool = False


def retry_after_of(exc: openai.APIStatusError) -> float | None:
    """The seconds a 429 asks the client to wait (capped), or None when it does not say."""
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return min(float(value), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:
        return None


def error_code_of(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("code") or inner.get("type") or "") or None
    return getattr(exc, "code", None)


def is_quota_error(exc: openai.APIStatusError) -> bool:
    """A 429 that says the account has no credit: waiting does not help, unlike a rate limit."""
    return error_code_of(exc) == "insufficient_quota"


def _safe_code(exc: openai.APIStatusError) -> str:
    """The error code, when it is a plain identifier (it goes into a reason users see)."""
    code = error_code_of(exc) or ""
    return f" {code}" if re.fullmatch(r"[a-z0-9_]{1,60}", code) else ""


def _classify(exc: Exception, attempt: int) -> _Verdict:
    """How a failed attempt is handled: the reason, whether to retry, and how long to wait.

    The account's refusals keep the provider's message out of the reason: it quotes part of
    the key or names the organisation.
    """
    backoff = BACKOFF_BASE_SECONDS * 2**attempt
    if isinstance(exc, openai.AuthenticationError):
        return _Verdict(
            f"OpenAI refused the API key ({exc.status_code}{_safe_code(exc)}): set a valid "
            "OPENAI_API_KEY, then resume the campaign",
            permanent=True,
            account=True,
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return _Verdict(
            f"OpenAI refused the API key permission for this request ({exc.status_code}"
            f"{_safe_code(exc)}): give the key's project access to the model, then resume the campaign",
            permanent=True,
            account=True,
        )
    if isinstance(exc, openai.RateLimitError):
        if is_quota_error(exc):
            return _Verdict(
                "the OpenAI account has no quota left (insufficient_quota): add credit, then resume "
                "the campaign",
                permanent=True,
                account=True,
            )
        return _Verdict("rate limited by the model provider (429)", False, retry_after_of(exc) or backoff)
    if isinstance(exc, openai.APITimeoutError):
        return _Verdict("the model provider did not answer in time", False, backoff)
    if isinstance(exc, openai.APIConnectionError):
        return _Verdict(f"cannot reach the model provider: {exc}", False, backoff)
    if isinstance(exc, openai.InternalServerError):
        return _Verdict(f"the model provider failed ({exc.status_code})", False, backoff)
    if isinstance(exc, openai.APIStatusError):
        return _Verdict(f"the model provider refused the request ({exc.status_code}): {exc.message}", True)
    return _Verdict(f"the model call failed: {type(exc).__name__}: {exc}", True)


def call_model(
    chat_model: BaseChatModel,
    messages: list[BaseMessage],
    *,
    node: str,
    provider: str,
    model: str,
    price: ModelPrice,
    gate: CallGate,
    tenant_id: int,
    campaign_id: int | None,
    max_retries: int,
    max_output_tokens: int,
) -> ModelReply:
    """Reserve, call (retrying as the module docstring says), settle.

    Raises BudgetExceeded (nothing was called) or ModelCallFailed (the record says what it cost).
    """
    estimated_input = estimate_prompt_tokens(str(m.content) for m in messages)
    estimate = cost_microusd(price, input_tokens=estimated_input, output_tokens=max_output_tokens)
    reservation = gate.reserve_model_call(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        model=model,
        estimated_tokens=estimated_input + max_output_tokens,
        estimated_cost_microusd=estimate,
    )
    # The offline model is answered without LangChain's per-call run machinery: same reply,
    # same usage metadata, so the same recorded call.
    invoke = chat_model.reply if isinstance(chat_model, OfflineChatModel) else chat_model.invoke
    # The provider is held to the output the reservation priced (ChatOpenAI sends it as
    # `max_completion_tokens`), so a verbose model cannot spend past the budget cap.
    started = time.perf_counter()
    input_tokens = output_tokens = cost = 0
    try:
        attempt = 0
        while True:
            try:
                reply = invoke(messages, max_tokens=max_output_tokens)
                break
            except Exception as exc:
                verdict = _classify(exc, attempt)
                if verdict.permanent or attempt >= max_retries:
                    latency = int((time.perf_counter() - started) * 1000)
                    record = ModelCallRecord(node, provider, model, 0, 0, 0, latency, verdict.reason)
                    raise ModelCallFailed(
                        verdict.reason,
                        permanent=verdict.permanent,
                        retry_after=None if verdict.permanent else verdict.wait,
                        record=record,
                        account=verdict.account,
                    ) from exc
                time.sleep(verdict.wait)
                attempt += 1
        usage = getattr(reply, "usage_metadata", None) or {}
        input_tokens = int(usage.get("input_tokens", 0))
        output_tokens = int(usage.get("output_tokens", 0))
        cost = cost_microusd(price, input_tokens=input_tokens, output_tokens=output_tokens)
    finally:
        gate.settle_model_call(
            reservation, input_tokens=input_tokens, output_tokens=output_tokens, cost_microusd=cost
        )
    latency = int((time.perf_counter() - started) * 1000)
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    return ModelReply(
        text, ModelCallRecord(node, provider, model, input_tokens, output_tokens, cost, latency)
    )
