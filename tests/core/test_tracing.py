"""OpenTelemetry spans: a run's share its enrolment's trace id (the monitor's), GenAI attributes on
model calls, sends with their outcome, OTLP export only when configured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select, update

from core import tracing
from core.config import Settings
from core.db import Database
from core.models import CampaignLead, Event
from core.monitor import enrolment_trace
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.service import preview, process_campaign_lead
from jobs.claims import claim_due_enrolments
from tests.conftest import make_settings
from tests.factories import seed_run
from tests.support.otlp_receiver import otlp_receiver

RUN_NODES = ["validate", "research", "compose", "guard", "approval", "send", "finalize"]


@pytest.fixture(autouse=True)
def _tracing_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts and ends with tracing off, whatever the environment says."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.shutdown()
    yield
    tracing.shutdown()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter)
    return exporter


def hex_id(value: int) -> str:
    return trace.format_trace_id(value)


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def test_the_spans_of_an_enrolments_run_carry_the_trace_id_the_monitor_shows(
    db: Database, spans: InMemorySpanExporter
) -> None:
    run = seed_run(db, leads=2)
    assert set(run.outcomes.values()) == {"sent"}
    finished = spans.get_finished_spans()
    roots = by_name(finished, "outreach.run")
    assert len(roots) == 2
    for campaign_lead_id in run.campaign_lead_ids:
        shown = enrolment_trace(db, run.owner, campaign_lead_id)
        assert shown.trace_id is not None and len(shown.trace_id) == 32
        [root] = [r for r in roots if r.attributes["leadflow.campaign_lead_id"] == campaign_lead_id]
        assert root.parent is None and root.attributes["leadflow.status"] == "sent"
        assert hex_id(root.context.trace_id) == shown.trace_id
        # Every event of the run names the same trace as its spans.
        assert {e.trace_id for e in shown.events} == {shown.trace_id}
        of_run = [s for s in finished if hex_id(s.context.trace_id) == shown.trace_id]
        nodes = [s for s in of_run if s.name.startswith("outreach.") and s is not root]
        assert [s.attributes["leadflow.node"] for s in sorted(nodes, key=lambda s: s.start_time)] == RUN_NODES
        assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in nodes)
        [compose] = [s for s in nodes if s.name == "outreach.compose"]
        [send_node] = [s for s in nodes if s.name == "outreach.send"]
        [chat] = [s for s in of_run if s.name == "chat gpt-4o-mini"]
        [send] = [s for s in of_run if s.name == "send sms"]
        assert chat.parent is not None and chat.parent.span_id == compose.context.span_id
        assert send.parent is not None and send.parent.span_id == send_node.context.span_id


def test_the_model_span_has_the_genai_attributes_and_the_recorded_usage(
    db: Database, spans: InMemorySpanExporter
) -> None:
    run = seed_run(db, leads=1)
    [chat] = by_name(spans.get_finished_spans(), "chat gpt-4o-mini")
    shown = enrolment_trace(db, run.owner, run.campaign_lead_ids[0])
    [call] = shown.calls
    assert chat.kind == trace.SpanKind.CLIENT
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat.attributes["gen_ai.provider.name"] == chat.attributes["gen_ai.system"] == "offline"
    assert chat.attributes["gen_ai.usage.input_tokens"] == call.input_tokens > 0
    assert chat.attributes["gen_ai.usage.output_tokens"] == call.output_tokens > 0
    assert chat.attributes["leadflow.node"] == "compose"
    assert chat.attributes["leadflow.cost_usd"] == pytest.approx(call.cost_microusd / 1_000_000)
    assert chat.status.status_code != trace.StatusCode.ERROR


def test_the_send_span_says_channel_provider_and_outcome(db: Database, spans: InMemorySpanExporter) -> None:
    seed_run(db, leads=1)
    [send] = by_name(spans.get_finished_spans(), "send sms")
    assert send.kind == trace.SpanKind.CLIENT
    assert (send.attributes["leadflow.channel"], send.attributes["leadflow.provider"]) == ("sms", "outbox")
    assert send.attributes["leadflow.send.outcome"] == "sent"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("0af7651916cd43dd8448eb211c80319c", "0af7651916cd43dd8448eb211c80319c"),
        ("0AF76519-16CD-43DD-8448-EB211C80319C", "0af7651916cd43dd8448eb211c80319c"),
        ("0af76519-16cd-43dd-8448-eb211c80319c", "0af7651916cd43dd8448eb211c80319c"),
    ],
)
def test_a_stored_trace_id_maps_to_the_same_otel_trace_id(stored: str, shown: str) -> None:
    assert tracing.otel_trace_id(stored) == shown


def test_any_other_stored_trace_id_maps_to_one_fixed_otel_trace_id() -> None:
    derived = tracing.otel_trace_id("bench")
    assert len(derived) == 32 and int(derived, 16) != 0
    assert derived == tracing.otel_trace_id("bench") != tracing.otel_trace_id("bench2")


def test_a_run_stored_with_a_dashed_trace_id_is_shown_as_its_spans_name_it(
    db: Database, spans: InMemorySpanExporter
) -> None:
    """Rows written before the ids were OTel's keep their dashed UUID; the monitor shows the
    32-digit form, which is the trace id spans get for that id."""
    run = seed_run(db, leads=1)
    [campaign_lead_id] = run.campaign_lead_ids
    dashed = str(uuid.uuid4())
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        session.execute(
            update(CampaignLead).where(CampaignLead.id == campaign_lead_id).values(trace_id=dashed)
        )
        session.execute(
            update(Event).where(Event.campaign_lead_id == campaign_lead_id).values(trace_id=dashed)
        )
    shown = enrolment_trace(db, run.owner, campaign_lead_id)
    assert shown.trace_id == uuid.UUID(dashed).hex
    assert shown.trace_ids == [uuid.UUID(dashed).hex]
    with tracing.run_span("outreach.run", dashed, {}) as root:
        assert root is not None
    assert hex_id(root.get_span_context().trace_id) == shown.trace_id


def test_spans_of_a_run_stay_in_its_trace_inside_another_span(
    db: Database, spans: InMemorySpanExporter
) -> None:
    """A run started inside some span (a request) is still its own trace: the monitor's."""
    run = seed_run(db, leads=2, process=0)
    runtime = PipelineRuntime.from_settings(db.settings, db)
    [claimed] = claim_due_enrolments(db, worker_id="w", limit=1, now=datetime.now(UTC), lease_seconds=60)
    with tracing.span("outer", {}) as outer:
        assert outer is not None
        process_campaign_lead(db, runtime, claimed, lease_owner="w")
    shown = enrolment_trace(db, run.owner, claimed)
    [root] = by_name(spans.get_finished_spans(), "outreach.run")
    assert hex_id(root.context.trace_id) == shown.trace_id != hex_id(outer.get_span_context().trace_id)


def test_nothing_is_traced_or_exported_without_an_endpoint(db: Database, settings: Settings) -> None:
    with otlp_receiver() as receiver:
        assert tracing.setup_tracing(settings, process="test") is False
        assert not tracing.active()
        seed_run(db, leads=1)
        with tracing.span("a span", {}) as nothing:
            assert nothing is None
        assert tracing.current_trace_id() is None
        tracing.shutdown()
        assert receiver.paths == []
    # OpenTelemetry's global provider is left alone (FastAPI would trace requests with it).
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"


def test_with_an_endpoint_the_runs_spans_are_exported_over_otlp(db: Database, database_url: str) -> None:
    with otlp_receiver() as receiver:
        settings = make_settings(database_url, otlp_endpoint=receiver.url + "/")
        assert tracing.setup_tracing(settings, process="worker") is True
        assert tracing.setup_tracing(settings, process="worker") is True  # once: the same provider
        run = seed_run(db, leads=1)
        tracing.shutdown()  # exports what the batch holds
        received = receiver.received()
    assert set(receiver.paths) == {"/v1/traces"}
    shown = enrolment_trace(db, run.owner, run.campaign_lead_ids[0])
    names = {s.name for s in received if s.trace_id == shown.trace_id}
    assert {"outreach.run", "chat gpt-4o-mini", "send sms"} | {f"outreach.{n}" for n in RUN_NODES} <= names
    assert {s.service for s in received} == {"leadflow"}
    # One trace per run: nothing of this run went under another id.
    assert {s.trace_id for s in received} == {shown.trace_id}


def test_the_standard_otel_variable_configures_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert tracing.otlp_endpoint(make_settings(database_url)) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("LEADFLOW_OTLP_ENDPOINT", "http://other:4318")
    assert tracing.otlp_endpoint(make_settings(database_url)) == "http://other:4318/v1/traces"


def test_spans_name_the_service_leadflow_unless_otel_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    named = []
    for service, process in ((None, "worker"), ("leadflow-eu", "api")):
        if service:
            monkeypatch.setenv("OTEL_SERVICE_NAME", service)
        exporter = InMemorySpanExporter()
        tracing.configure(exporter, process=process)
        with tracing.span("one", {}):
            pass
        [finished] = exporter.get_finished_spans()
        named.append(
            (finished.resource.attributes["service.name"], finished.resource.attributes["leadflow.process"])
        )
    assert named == [("leadflow", "worker"), ("leadflow-eu", "api")]


def test_a_preview_is_traced_inside_the_request_that_asked_for_it(
    db: Database, spans: InMemorySpanExporter
) -> None:
    run = seed_run(db, leads=1, process=0)
    with db.session(tenant_id=run.owner.tenant_id, read_only=True) as session:
        lead_id = session.scalar(
            select(CampaignLead.lead_id).where(CampaignLead.id == run.campaign_lead_ids[0])
        )
    runtime = PipelineRuntime.from_settings(db.settings, db)
    with tracing.span("POST /api/v1/campaigns/{campaign_id}/preview", {}) as request:
        assert request is not None
        result = preview(db, runtime, run.owner, run.campaign_id, int(lead_id or 0))
    assert result.status == "ready" and result.body
    request_trace = hex_id(request.get_span_context().trace_id)
    finished = spans.get_finished_spans()
    [previewed] = by_name(finished, "outreach.preview")
    assert previewed.parent is not None and previewed.parent.span_id == request.get_span_context().span_id
    assert {hex_id(s.context.trace_id) for s in finished} == {request_trace}
    assert {"outreach.compose", "chat gpt-4o-mini"} <= {s.name for s in finished}
    assert "leadflow.campaign_lead_id" not in previewed.attributes
