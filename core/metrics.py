"""Prometheus metrics: what the HTTP service, the pipeline, the model calls and the sends count.

Each metric is defined once here and counted at one place: the HTTP middleware (api.observe),
the node wrapper (core.pipeline.observed), PipelineRuntime.call_model, the provider send
(core.channels.measured), lease recovery (jobs.recovery) and the webhook deliveries. No label
carries a tenant, a lead or a raw path, so every series set stays bounded: routes are templates,
models the few a price table names, channels and outcomes fixed words.

`python -m jobs.worker` serves its process's metrics on LEADFLOW_METRICS_PORT; the HTTP service
serves them at /api/metrics. Several processes behind one port (`uvicorn --workers N`) share them
through prometheus-client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR names an empty directory,
and `exposition` then reads every process's files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.db import Database
from core.lifecycle import due_condition
from core.logs import get_logger
from core.models import Campaign, CampaignLead, CampaignStatus

log = get_logger(__name__)

# Model round trips run from tens of milliseconds (the offline model) to tens of seconds.
MODEL_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
NODE_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "leadflow_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "leadflow_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
)
PIPELINE_NODE_SECONDS = Histogram(
    "leadflow_pipeline_node_duration_seconds",
    "Time one node of a run took, by graph (outreach, reply) and node.",
    ["graph", "node"],
    buckets=NODE_SECONDS_BUCKETS,
)
MODEL_CALLS = Counter(
    "leadflow_model_calls",
    "Model calls, by provider, model and outcome (ok, failed, refused by the budget gate).",
    ["provider", "model", "outcome"],
)
MODEL_TOKENS = Counter(
    "leadflow_model_tokens",
    "Tokens the model calls used, by model and type (prompt, completion).",
    ["model", "type"],
)
MODEL_COST_USD = Counter(
    "leadflow_model_cost_usd",
    "What the model calls cost in US dollars, at the price table's prices, by model.",
    ["model"],
)
MODEL_CALL_SECONDS = Histogram(
    "leadflow_model_call_duration_seconds",
    "Time one model call took, retries included, by model.",
    ["model"],
    buckets=MODEL_SECONDS_BUCKETS,
)
SENDS = Counter(
    "leadflow_sends",
    "Provider sends, by channel, provider and outcome (sent, failed, rejected, opted_out, refused, unknown).",
    ["channel", "provider", "outcome"],
)
SEND_SECONDS = Histogram(
    "leadflow_send_duration_seconds",
    "Time one provider send took, by channel and provider.",
    ["channel", "provider"],
)
LEASES_RECOVERED = Counter(
    "leadflow_leases_recovered",
    "Expired leases of dead workers recovered: returned to pending, or failed out of attempts.",
    ["outcome"],
)
SENDS_RECONCILED = Counter(
    "leadflow_sends_reconciled",
    "Ledger rows a dead worker left `sending`, decided by recovery, by the status they got.",
    ["status"],
)
WEBHOOK_DELIVERIES = Counter(
    "leadflow_webhook_deliveries",
    "Outgoing webhook delivery attempts, by outcome.",
    ["outcome"],
)
DUE_ENROLMENTS = "leadflow_due_enrolments_waiting"


class LabelledChildren:
    """A metric's children by label values, looked up once: the hot paths then do a dict get."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            # Two threads may both get here: labels() answers both with the same child.
            child = self._children[values] = self._metric.labels(*values)
        return child


http_requests = LabelledChildren(HTTP_REQUESTS)
http_request_seconds = LabelledChildren(HTTP_REQUEST_SECONDS)
model_calls = LabelledChildren(MODEL_CALLS)
model_tokens = LabelledChildren(MODEL_TOKENS)
model_cost_usd = LabelledChildren(MODEL_COST_USD)
model_call_seconds = LabelledChildren(MODEL_CALL_SECONDS)
sends = LabelledChildren(SENDS)
send_seconds = LabelledChildren(SEND_SECONDS)


def count_model_call(
    *,
    provider: str,
    model: str,
    outcome: str,
    input_tokens: int,
    output_tokens: int,
    cost_microusd: int,
    seconds: float,
) -> None:
    """One model call: its outcome, tokens, cost and duration."""
    model_calls(provider, model, outcome).inc()
    if input_tokens:
        model_tokens(model, "prompt").inc(input_tokens)
    if output_tokens:
        model_tokens(model, "completion").inc(output_tokens)
    if cost_microusd:
        model_cost_usd(model).inc(cost_microusd / 1_000_000)
    model_call_seconds(model).observe(seconds)


def due_enrolments_waiting(db: Database, *, now: datetime) -> int:
    """Enrolments of running campaigns whose time has come and that no worker holds."""
    with db.session(system=True, read_only=True) as session:
        return int(
            session.scalar(
                select(func.count(CampaignLead.id))
                .join(Campaign, Campaign.id == CampaignLead.campaign_id)
                .where(Campaign.status == CampaignStatus.running.value, due_condition(now))
            )
            or 0
        )


class DueEnrolmentsCollector(Collector):
    """The due enrolments waiting, counted in the database when Prometheus scrapes, not per tick.

    One COUNT over the (status, next_action_at) index per scrape; a database that does not
    answer leaves the sample out of that scrape instead of failing the others.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            waiting = due_enrolments_waiting(self.db, now=datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on the database
            log.warning("due_enrolments_unavailable", error=f"{type(exc).__name__}: {exc}")
            return
        yield GaugeMetricFamily(
            DUE_ENROLMENTS,
            "Enrolments of running campaigns due now and not held by a worker.",
            value=waiting,
        )


def exposition(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text format of this process's metrics, or of every process's in multiprocess mode."""
    if registry is None:
        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_worker_metrics(db: Database, port: int, *, host: str = "0.0.0.0") -> Any:
    """Serve this worker's metrics, and the due enrolments, on `port` (in a daemon thread).

    Returns the HTTP server, for tests to shut down.
    """
    registry = CollectorRegistry()
    registry.register(_ProcessMetrics())
    registry.register(DueEnrolmentsCollector(db))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics_served", port=port)
    return server


class _ProcessMetrics(Collector):
    """The default registry's metrics: this process's own, in multiprocess mode too (a worker
    serves its own port, so it must not add up the files of the other processes)."""

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()
