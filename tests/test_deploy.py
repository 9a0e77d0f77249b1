"""The Dockerfile and compose file: what can be checked without a Docker engine."""

from __future__ import annotations

import re

import yaml

from core.config import ROOT


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_has_database_app_and_scalable_worker_and_api() -> None:
    services = _compose()["services"]
    assert set(services) == {"db", "app", "api", "worker"}
    worker = services["worker"]
    assert worker["command"] == ["python", "-m", "jobs.worker"]
    # --scale worker=N needs a service with no fixed container name and no host port.
    assert "container_name" not in worker and "ports" not in worker
    assert services["app"]["ports"] == ["8501:8501"]
    api = services["api"]
    assert api["command"] == ["python", "-m", "api"]
    # --scale api=N as well: no fixed name, no host port; the health check asks the service.
    assert "container_name" not in api and "ports" not in api and api["expose"] == ["8502"]
    assert "/api/health" in " ".join(api["healthcheck"]["test"])
    assert services["app"]["environment"]["LEADFLOW_EMBEDDED_API"] == "false"
    for name in ("app", "api", "worker"):
        env = services[name]["environment"]
        assert env["LEADFLOW_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["app"]["environment"]["LEADFLOW_EMBEDDED_RUNNER"] == "false"


def test_dockerfile_is_slim_non_root_with_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert "RUN pip install -r requirements.txt" in text
    assert re.search(r"^USER leadflow$", text, re.MULTILINE)
    assert re.search(r"^EXPOSE 8501 8502$", text, re.MULTILINE)
    assert "/_stcore/health" in text
    # The image installs exactly the pinned runtime requirements.
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [r for r in requirements if r and not r.startswith("#")]
    assert pins and all("==" in r for r in pins)


def test_dockerignore_keeps_secrets_and_databases_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".streamlit/secrets.toml", "data/*.db", ".git"} <= set(ignored)


def test_compose_names_the_metrics_scrape_targets() -> None:
    """Each worker serves its metrics on an exposed port; the api serves them at /api/metrics."""
    text = (ROOT / "compose.yaml").read_text()
    worker = _compose()["services"]["worker"]
    port = worker["environment"]["LEADFLOW_METRICS_PORT"]
    assert worker["expose"] == [port]
    assert f"names: [worker], type: A, port: {port}" in text
    assert "metrics_path: /api/metrics" in text and "names: [api], type: A, port: 8502" in text
