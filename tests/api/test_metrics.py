"""GET /api/metrics: the service's requests by route template and status, one answer for several
processes in multiprocess mode, and each request traced as "METHOD route"."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from core import tracing
from core.config import ROOT
from core.models import Role
from tests.api.v1.conftest import V1Api, v1  # noqa: F401 - the fixture, a real uvicorn server
from tests.factories import make_actor, make_tenant

PROBE_ROUTE = "/api/v1/metrics-probes/{probe_id}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def _tracing_off() -> Iterator[None]:
    tracing.shutdown()
    yield
    tracing.shutdown()


@pytest.fixture
def api(v1: V1Api) -> V1Api:  # noqa: F811 - the imported fixture, used here
    """The service with a route under /api/v1 that has a path parameter, as the resources have."""
    v1_app: FastAPI = next(r.app for r in v1.app.routes if getattr(r, "path", None) == "/api/v1")

    @v1_app.get("/metrics-probes/{probe_id}")
    def get_probe(probe_id: int) -> dict[str, int]:
        return {"id": probe_id}

    return v1


@pytest.fixture
def client(api: V1Api) -> httpx.Client:
    """A client of /api/v1 calling as an owner."""
    return api.client(make_actor(api.db, make_tenant(api.db), Role.owner))


def scrape(url: str) -> tuple[str, Samples]:
    answer = httpx.get(url + "/api/metrics", timeout=30)
    assert answer.status_code == 200
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    return answer.headers["content-type"], samples


def requests(route: str, status: int, method: str = "GET") -> tuple[str, frozenset[tuple[str, str]]]:
    labels = {"method": method, "route": route, "status": str(status)}
    return "leadflow_http_requests_total", frozenset(labels.items())


def test_requests_are_counted_by_route_template_and_status(api: V1Api, client: httpx.Client) -> None:
    _, before = scrape(api.url)
    assert client.get("/metrics-probes/42").json() == {"id": 42}
    assert client.get("/metrics-probes/7").status_code == 200
    assert client.get("/metrics-probes/not-a-number").status_code == 422
    assert client.get("/no-such-thing/42").status_code == 404
    assert httpx.get(api.url + "/no/such/path").status_code == 404
    assert httpx.get(api.url + "/api/health").status_code == 200
    content_type, after = scrape(api.url)
    assert content_type.startswith("text/plain; version=")

    def grew(key: tuple[str, frozenset[tuple[str, str]]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(requests(PROBE_ROUTE, 200)) == 2
    assert grew(requests(PROBE_ROUTE, 422)) == 1
    assert grew(requests("unmatched", 404)) == 2
    assert grew(requests("/api/health", 200)) == 1
    duration = (
        "leadflow_http_request_duration_seconds_count",
        frozenset({"method": "GET", "route": PROBE_ROUTE}.items()),
    )
    assert grew(duration) == 3
    # The earlier scrape is counted under its own route.
    assert grew(requests("/api/metrics", 200)) == 1
    # Never a raw path: the series stay bounded whatever clients ask for.
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(r and ("42" in r or "no-such" in r or "/no/" in r or "not-a" in r) for r in routes)


def test_metrics_of_several_processes_are_one_answer_in_multiprocess_mode(
    api: V1Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each uvicorn worker writes its counts to PROMETHEUS_MULTIPROC_DIR; any one serves them all."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    count = (
        "from core import metrics\n"
        "import sys\n"
        "metrics.http_requests('GET', '/api/health', '200').inc(int(sys.argv[1]))\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    for requests_served in ("3", "4"):
        subprocess.run(
            [sys.executable, "-c", count, requests_served], cwd=ROOT, env=env, check=True, timeout=120
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc))
    _, samples = scrape(api.url)
    assert samples[requests("/api/health", 200)] == 7


def test_a_request_is_a_server_span_named_by_method_and_route(api: V1Api, client: httpx.Client) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter)
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    assert client.get("/metrics-probes/42", headers=headers).status_code == 200
    assert httpx.get(api.url + "/no/such/path").status_code == 404
    # A request's span ends as its handler returns, which may be just after the client has the
    # answer: wait for both (the server ends them; nothing here is timed).
    deadline = time.monotonic() + 30
    while len(exporter.get_finished_spans()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    served, unmatched = sorted(exporter.get_finished_spans(), key=lambda s: s.name, reverse=True)
    assert served.name == f"GET {PROBE_ROUTE}" and served.kind == trace.SpanKind.SERVER
    assert served.attributes["http.route"] == PROBE_ROUTE
    assert served.attributes["http.request.method"] == "GET"
    assert served.attributes["http.response.status_code"] == 200
    # It continues the caller's trace.
    assert trace.format_trace_id(served.context.trace_id) == caller_trace
    assert served.parent is not None and trace.format_span_id(served.parent.span_id) == caller_span
    assert unmatched.name == "GET" and "http.route" not in unmatched.attributes
    assert unmatched.attributes["http.response.status_code"] == 404
