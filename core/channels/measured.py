"""A provider send, counted and traced: the one call every send goes through.

The campaign send (core.pipeline.send), a person's answer to a reply (core.inbound.answer) and
the sender verification email call `measured_send` instead of `sender.send`. The outcome is read
from what the provider did, as the callers read it: `sent`; `failed` (not sent, may be retried);
`rejected` (not sent, permanent: a bad number or address); `opted_out` (the recipient refuses
messages); `refused` (the provider refused the account); `unknown` (anything else: maybe sent).
"""

from __future__ import annotations

from time import perf_counter

from core import metrics, tracing
from core.channels.base import NotSent, OutgoingMessage, Sender, SendReceipt
from core.errors import ProviderAccountRefused


def send_outcome(exc: BaseException | None) -> str:
    """The metric's and the span's word for how a send ended (None: it returned a receipt)."""
    if exc is None:
        return "sent"
    if isinstance(exc, ProviderAccountRefused):
        return "refused"
    if isinstance(exc, NotSent):
        if exc.opted_out:
            return "opted_out"
        return "rejected" if exc.permanent else "failed"
    return "unknown"


def measured_send(sender: Sender, message: OutgoingMessage) -> SendReceipt:
    """`sender.send(message)`, with its outcome and duration counted and a span when tracing."""
    channel, provider = message.channel, sender.name
    attributes = (
        {"leadflow.channel": channel, "leadflow.provider": provider, "leadflow.tenant_id": message.tenant_id}
        if tracing.active()
        else {}
    )
    started = perf_counter()
    error: BaseException | None = None
    with tracing.span(f"send {channel}", attributes, kind=tracing.SpanKind.CLIENT) as span:
        try:
            return sender.send(message)
        except BaseException as exc:
            error = exc
            raise
        finally:
            outcome = send_outcome(error)
            metrics.sends(channel, provider, outcome).inc()
            metrics.send_seconds(channel, provider).observe(perf_counter() - started)
            if span is not None:
                span.set_attribute("leadflow.send.outcome", outcome)
                if error is not None:
                    tracing.failed(span, outcome, getattr(error, "reason", None) or type(error).__name__)
