"""OpenTelemetry tracing: set up once from the settings, off (nothing recorded, nothing exported) by default.

Spans: one per API request (api.observe), one per run of a lead with a child per pipeline node,
one per model call (the GenAI semantic conventions) and one per provider send. A run's spans
carry the enrolment's trace id as their OTel trace id (`otel_trace_id`), so the Run monitor's
drill-down and a tracing backend name the same trace.

Export is OTLP over HTTP to LEADFLOW_OTLP_ENDPOINT (or the standard OTEL_EXPORTER_OTLP_ENDPOINT),
`/v1/traces` appended as the OTLP specification says for a base URL. Without it no provider is
made: every helper here is a flag test, and the hot paths pay nothing more.

The tracer provider is this module's own, not OpenTelemetry's global one: FastAPI traces every
request itself once a global provider is set, which would double the API's request spans.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from core.config import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "Span",
    "SpanKind",
    "active",
    "configure",
    "current_trace_id",
    "new_trace_id",
    "otel_trace_id",
    "run_span",
    "setup_tracing",
    "shutdown",
    "span",
    "tracer",
]

SERVICE_NAME = "leadflow"
OTLP_TRACES_PATH = "/v1/traces"
_HEX32 = re.compile(r"[0-9a-f]{32}")

_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()
_active = False
# The trace id the next root span must get (a run's), read by the provider's id generator.
_next_trace_id: ContextVar[int | None] = ContextVar("leadflow_next_trace_id", default=None)


def active() -> bool:
    """Whether spans are recorded: a tracer provider was set up (an exporter is configured)."""
    return _active


class _Tracer:
    """The tracer every Leadflow span comes from: the configured one, or OpenTelemetry's no-op."""

    def start_as_current_span(self, name: str, **kwargs: Any) -> Any:
        return _tracer.start_as_current_span(name, **kwargs)

    def start_span(self, name: str, **kwargs: Any) -> Span:
        return _tracer.start_span(name, **kwargs)


tracer = _Tracer()


# -- trace ids ----------------------------------------------------------------------------------


def new_trace_id() -> str:
    """A run's trace id: 32 lower-case hex digits, the W3C and OpenTelemetry form, so the id the
    monitor shows and the id a tracing backend shows are the same text."""
    return uuid.uuid4().hex


def otel_trace_id(trace_id: str) -> str:
    """The OpenTelemetry trace id (32 hex digits) of a stored trace id.

    New ids are that already. Runs before them stored a dashed UUID: the same 128 bits without
    the dashes. Anything else is hashed, so each id still names one trace, always the same.
    """
    text = trace_id.strip().lower()
    if _HEX32.fullmatch(text):
        return text
    try:
        return uuid.UUID(text).hex
    except ValueError:
        return hashlib.sha256(trace_id.encode()).hexdigest()[:32]


def current_trace_id() -> str | None:
    """The trace id of the span in progress (32 hex digits), or None when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


# -- setup ------------------------------------------------------------------------------------


def otlp_endpoint(settings: Settings) -> str | None:
    """Where spans go (the traces URL), or None: nothing is exported."""
    base = (settings.otlp_endpoint or "").strip()
    if not base:
        return None
    return base.rstrip("/") + OTLP_TRACES_PATH


def setup_tracing(settings: Settings, *, process: str) -> bool:
    """Export spans over OTLP when the settings name an endpoint; once per process.

    `process` (api, worker) becomes the `leadflow.process` resource attribute.
    Returns whether tracing is on. A second call changes nothing.
    """
    if _active:
        return True
    endpoint = otlp_endpoint(settings)
    if endpoint is None:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    configure(OTLPSpanExporter(endpoint=endpoint), batch=True, process=process)
    return True


def configure(exporter: SpanExporter, *, batch: bool = False, process: str = "test") -> TracerProvider:
    """Record spans into `exporter` (tests give the SDK's InMemorySpanExporter, unbatched)."""
    global _provider, _tracer, _active
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    with _lock:
        if _provider is not None:
            _provider.shutdown()
        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; without them the service is "leadflow".
        resource = Resource.create({"leadflow.process": process})
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = TracerProvider(resource=resource, id_generator=_run_id_generator())
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        _provider, _tracer, _active = provider, provider.get_tracer("leadflow"), True
        return provider


def shutdown() -> None:
    """Export what is left and switch tracing off (process exit; tests)."""
    global _provider, _tracer, _active
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider, _tracer, _active = None, trace.NoOpTracer(), False


def _run_id_generator() -> Any:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RunIdGenerator(RandomIdGenerator):
        """Random ids, but a run's root span gets the run's trace id."""

        def generate_trace_id(self) -> int:
            wanted = _next_trace_id.get()
            return wanted if wanted is not None else super().generate_trace_id()

    return RunIdGenerator()


# -- spans ------------------------------------------------------------------------------------


# What every helper answers when tracing is off: a context manager that does nothing, reused.
_NO_SPAN: AbstractContextManager[None] = nullcontext(None)


def run_span(name: str, trace_id: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Span | None]:
    """The root span of one run, whose trace id is the run's; its nodes' spans nest inside.

    A new trace, not a child of whatever span is current: the monitor names the run's trace.
    Gives None when tracing is off.
    """
    if not _active:
        return _NO_SPAN
    return _root_span(name, int(otel_trace_id(trace_id), 16), attributes)


@contextmanager
def _root_span(name: str, trace_id: int, attributes: Mapping[str, Any]) -> Iterator[Span]:
    token = _next_trace_id.set(trace_id)
    try:
        root = _tracer.start_span(name, context=Context(), attributes=dict(attributes))
    finally:
        _next_trace_id.reset(token)
    with trace.use_span(root, end_on_exit=True, record_exception=True, set_status_on_exception=True):
        yield root


def span(
    name: str, attributes: Mapping[str, Any], *, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span | None]:
    """A child of the current span; None when tracing is off."""
    if not _active:
        return _NO_SPAN
    manager: AbstractContextManager[Span] = _tracer.start_as_current_span(
        name, kind=kind, attributes=dict(attributes)
    )
    return manager


def failed(current: Span | None, error_type: str, description: str) -> None:
    """Mark a span failed with the error's type (the `error.type` attribute) and reason."""
    if current is not None:
        current.set_attribute("error.type", error_type)
        current.set_status(Status(StatusCode.ERROR, description))


def request_span(
    method: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
) -> AbstractContextManager[Span | None]:
    """An HTTP request's server span, continuing the caller's trace (W3C `traceparent`).

    Named by its method until the route is known (`request_answered` renames it).
    """
    if not _active:
        return _NO_SPAN
    from opentelemetry.propagate import extract

    manager: AbstractContextManager[Span] = _tracer.start_as_current_span(
        method, context=extract(headers), kind=SpanKind.SERVER, attributes=dict(attributes)
    )
    return manager


def request_answered(current: Span | None, method: str, route: str | None, status: int) -> None:
    """Name the request's span "METHOD route" and record its status (5xx: an error)."""
    if current is None:
        return
    if route:
        current.update_name(f"{method} {route}")
        current.set_attribute("http.route", route)
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))
        current.set_attribute("error.type", str(status))
