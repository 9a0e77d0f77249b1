"""The README's one command serves the api too: app.py's startup path starts it, once per process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from streamlit.testing.v1 import AppTest

import api.embedded
from core.config import ROOT
from tests.conftest import make_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def api_port(page_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    port = _free_port()
    monkeypatch.setenv("LEADFLOW_EMBEDDED_API", "true")
    monkeypatch.setenv("LEADFLOW_API_HOST", "127.0.0.1")
    monkeypatch.setenv("LEADFLOW_API_PORT", str(port))
    yield port
    api.embedded.stop_embedded_api()


def _wait_for_start() -> None:
    # Waits on the server's own state (started, or failed), not on a clock.
    while not api.embedded.embedded_api_started():
        failure = api.embedded.embedded_api_failure()
        if failure is not None:
            pytest.fail(failure)
        threading.Event().wait(0.05)


def test_the_apps_startup_path_serves_the_api_health(api_port: int) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    _wait_for_start()
    response = httpx.get(f"http://127.0.0.1:{api_port}/api/health", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    # Another session's run of app.py starts no second server.
    AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert api.embedded.start_embedded_api(make_settings("sqlite://", embedded_api=True)) is None


def test_a_taken_port_is_reported_not_raised(api_port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", api_port))
        taken.listen()
        settings = make_settings("sqlite://", embedded_api=True, api_host="127.0.0.1", api_port=api_port)
        thread = api.embedded.start_embedded_api(settings)
        assert thread is not None
        thread.join(timeout=60)
    failure = api.embedded.embedded_api_failure()
    assert failure is not None and failure.startswith("the HTTP service did not start")


def test_off_when_the_setting_says_so() -> None:
    assert api.embedded.start_embedded_api(make_settings("sqlite://", embedded_api=False)) is None
