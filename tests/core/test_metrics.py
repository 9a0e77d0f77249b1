"""Prometheus metrics: what a run counts (nodes, model calls, tokens, cost, sends), the outcomes of
sends and model calls, due enrolments, recovered leases, and a worker serving its own metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from core import tracing
from core.channels.base import NotSent, OutgoingMessage, SendReceipt
from core.channels.measured import measured_send
from core.config import ROOT, Settings
from core.db import Database
from core.errors import ProviderAccountRefused
from core.gate import BudgetExceeded
from core.llm.calls import ModelCallFailed
from core.metrics import DueEnrolmentsCollector
from core.models import Campaign, CampaignLead
from core.monitor import enrolment_trace
from core.pipeline.runtime import PipelineRuntime
from jobs.claims import claim_due_enrolments
from jobs.recovery import recover_expired_leases
from tests.conftest import make_settings
from tests.core.pipeline.conftest import ScriptedModel
from tests.factories import seed_run
from tests.support.otlp_receiver import otlp_receiver

RUN_NODES = ["validate", "research", "compose", "guard", "approval", "send", "finalize"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot(*samples: tuple[str, dict[str, str]]) -> list[float]:
    return [sample(name, **labels) for name, labels in samples]


def token_totals(db: Database, tenant_id: int, campaign_id: int) -> tuple[int, int, int]:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        rows = session.execute(
            select(CampaignLead.input_tokens, CampaignLead.output_tokens, CampaignLead.cost_microusd).where(
                CampaignLead.campaign_id == campaign_id
            )
        ).all()
    return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)


def test_a_run_counts_its_nodes_model_call_tokens_cost_and_send(db: Database) -> None:
    node_counts = [
        ("leadflow_pipeline_node_duration_seconds_count", {"graph": "outreach", "node": n}) for n in RUN_NODES
    ]
    counted = [
        ("leadflow_model_calls_total", {"provider": "offline", "model": "gpt-4o-mini", "outcome": "ok"}),
        ("leadflow_model_tokens_total", {"model": "gpt-4o-mini", "type": "prompt"}),
        ("leadflow_model_tokens_total", {"model": "gpt-4o-mini", "type": "completion"}),
        ("leadflow_model_cost_usd_total", {"model": "gpt-4o-mini"}),
        ("leadflow_model_call_duration_seconds_count", {"model": "gpt-4o-mini"}),
        ("leadflow_sends_total", {"channel": "sms", "provider": "outbox", "outcome": "sent"}),
        ("leadflow_send_duration_seconds_count", {"channel": "sms", "provider": "outbox"}),
    ]
    nodes_before, before = snapshot(*node_counts), snapshot(*counted)
    run = seed_run(db, leads=2)
    assert list(run.outcomes.values()) == ["sent", "sent"]
    nodes_after, after = snapshot(*node_counts), snapshot(*counted)
    assert [a - b for a, b in zip(nodes_after, nodes_before, strict=True)] == [2.0] * len(RUN_NODES)
    input_tokens, output_tokens, cost = token_totals(db, run.owner.tenant_id, run.campaign_id)
    assert input_tokens > 0 and output_tokens > 0 and cost > 0
    calls, prompt, completion, dollars, timed_calls, sent, timed_sends = (
        a - b for a, b in zip(after, before, strict=True)
    )
    assert (calls, timed_calls, sent, timed_sends) == (2, 2, 2, 2)
    assert (prompt, completion) == (input_tokens, output_tokens)
    assert dollars == pytest.approx(cost / 1_000_000)


class Provider:
    """A send provider that answers as it is told: a receipt, or the given exception."""

    name = "fakeprovider"

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.error is not None:
            raise self.error
        return SendReceipt("fake-1")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


MESSAGE = OutgoingMessage(
    tenant_id=1, campaign_id=1, channel="email", to_address="a@b.example", body="hi", idempotency_key="cl1-s0"
)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "sent"),
        (NotSent("the provider is down", permanent=False), "failed"),
        (NotSent("not a mobile number", permanent=True), "rejected"),
        (NotSent("the recipient opted out", permanent=True, opted_out=True), "opted_out"),
        (ProviderAccountRefused("the key was refused", provider="fakeprovider"), "refused"),
        (TimeoutError("read timed out"), "unknown"),
    ],
)
def test_each_send_is_counted_by_its_outcome(error: BaseException | None, outcome: str) -> None:
    labels = {"channel": "email", "provider": "fakeprovider", "outcome": outcome}
    before = sample("leadflow_sends_total", **labels)
    timed = sample("leadflow_send_duration_seconds_count", channel="email", provider="fakeprovider")
    if error is None:
        assert measured_send(Provider(None), MESSAGE) == SendReceipt("fake-1")
    else:
        with pytest.raises(type(error)):
            measured_send(Provider(error), MESSAGE)
    assert sample("leadflow_sends_total", **labels) == before + 1
    assert (
        sample("leadflow_send_duration_seconds_count", channel="email", provider="fakeprovider") == timed + 1
    )


class RefusingGate:
    """A call gate whose budget is spent: it refuses every model call, as DatabaseGate does."""

    def reserve_model_call(self, **_: Any) -> object:
        raise BudgetExceeded("campaign budget reached")

    def settle_model_call(self, reservation: object, **_: Any) -> None:
        raise AssertionError("nothing was reserved, nothing is settled")

    def acquire_send(self, **_: Any) -> None:
        return None


def _call(runtime: PipelineRuntime) -> None:
    runtime.call_model(
        [SystemMessage("Write an intro."), HumanMessage("Ada, CTO")],
        node="compose",
        model="gpt-4.1-nano",
        temperature=0.2,
        tenant_id=1,
        price_overrides={},
        campaign_id=None,
        max_output_tokens=50,
    )


def test_failed_and_refused_model_calls_are_counted_as_such(settings: Settings) -> None:
    def calls(outcome: str) -> float:
        return sample("leadflow_model_calls_total", provider="openai", model="gpt-4.1-nano", outcome=outcome)

    failing = ScriptedModel(replies=["x"], prompts=[], fail_with=ValueError("the model broke"))
    runtime = PipelineRuntime(settings=settings, models=failing, senders={}, provider="openai")
    before = {o: calls(o) for o in ("ok", "failed", "refused")}
    with pytest.raises(ModelCallFailed):
        _call(runtime)
    runtime.gate = RefusingGate()
    with pytest.raises(BudgetExceeded):
        _call(runtime)
    assert {o: calls(o) - before[o] for o in before} == {"ok": 0, "failed": 1, "refused": 1}


def test_due_enrolments_waiting_are_counted_at_scrape(db: Database) -> None:
    run = seed_run(db, leads=3, process=1)
    registry = CollectorRegistry()
    registry.register(DueEnrolmentsCollector(db))
    assert registry.get_sample_value("leadflow_due_enrolments_waiting") == 2
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id).values(status="paused"))
    assert b"leadflow_due_enrolments_waiting 0.0" in generate_latest(registry)


def test_a_database_that_does_not_answer_leaves_the_gauge_out_of_the_scrape() -> None:
    away = Database(make_settings("postgresql+psycopg://leadflow@127.0.0.1:1/away"))
    registry = CollectorRegistry()
    registry.register(DueEnrolmentsCollector(away))
    try:
        assert registry.get_sample_value("leadflow_due_enrolments_waiting") is None
    finally:
        away.dispose()


def test_recovered_leases_are_counted_by_outcome(db: Database) -> None:
    run = seed_run(db, leads=2, process=0)
    now = datetime.now(UTC)
    claimed = claim_due_enrolments(db, worker_id="dead-worker", limit=2, now=now, lease_seconds=60)
    assert len(claimed) == 2
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(claimed))
            .values(lease_expires_at=now - timedelta(seconds=1))
        )
        session.execute(update(CampaignLead).where(CampaignLead.id == claimed[0]).values(attempts=10))
    before = {o: sample("leadflow_leases_recovered_total", outcome=o) for o in ("returned", "failed")}
    report = recover_expired_leases(
        db, now=now, reconcile=lambda message_id: "sent", max_attempts=10, lease_seconds=60
    )
    assert (report.returned_to_pending, report.failed_after_attempts) == (1, 1)
    after = {o: sample("leadflow_leases_recovered_total", outcome=o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {"returned": 1, "failed": 1}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_serves_its_metrics_on_its_port_and_exports_its_spans(
    db: Database, database_url: str
) -> None:
    run = seed_run(db, leads=3, process=0)
    port = _free_port()
    sent = (
        "leadflow_sends_total",
        frozenset({"channel": "sms", "provider": "outbox", "outcome": "sent"}.items()),
    )
    with otlp_receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_", "OTEL_"))}
        env.update(
            LEADFLOW_DATABASE_URL=database_url,
            LEADFLOW_MIGRATE_ON_START="false",
            LEADFLOW_METRICS_PORT=str(port),
            LEADFLOW_OTLP_ENDPOINT=receiver.url,
            LEADFLOW_TICK_SECONDS="0.1",
            LEADFLOW_SMS_SENDS_PER_SECOND="0",
            LEADFLOW_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobs.worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            scraped: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
            while scraped.get(sent) != 3:
                assert worker.poll() is None, worker.stderr.read().decode()[-3000:] if worker.stderr else ""
                assert time.monotonic() < deadline, f"the worker's metrics never showed 3 sends: {scraped}"
                time.sleep(0.2)
                try:
                    scraped = _scrape(port)
                except OSError:
                    continue
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr.decode()[-3000:]
        received = receiver.received()
    send_node = (
        "leadflow_pipeline_node_duration_seconds_count",
        frozenset({"graph": "outreach", "node": "send"}.items()),
    )
    assert scraped[send_node] == 3
    ok_calls = (
        "leadflow_model_calls_total",
        frozenset({"provider": "offline", "model": "gpt-4o-mini", "outcome": "ok"}.items()),
    )
    assert scraped[ok_calls] == 3
    assert ("leadflow_due_enrolments_waiting", frozenset()) in scraped
    # The worker exported its runs' spans before it exited, under the ids the monitor shows.
    shown = {enrolment_trace(db, run.owner, cl).trace_id for cl in run.campaign_lead_ids}
    runs = {s.trace_id for s in received if s.name == "outreach.run"}
    assert runs == shown and len(shown) == 3
    assert not tracing.active()  # the worker's tracing was its own process's
