"""An idle connection stays open until its client closes it: the client, not the service, closes.

A client that pools connections (a load balancer, Twilio, httpx) sends its next request on an idle
one; had the service closed it meanwhile (uvicorn's default: after 5 s), that request is never
read and its sender gets a reset connection instead of an answer. The inbound benchmark lost
webhooks that way.
"""

from __future__ import annotations

import http.client
import inspect
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

import api.__main__
from api.main import create_app
from api.server import uvicorn_options
from core.config import Settings
from core.db import Database
from tests.conftest import make_settings

# The idle timeouts of what calls the service: AWS ALB and nginx's upstream keep-alive (60 s);
# httpx's pool (5 s) is below both.
PROXY_IDLE_SECONDS = 60
UVICORN_DEFAULT_KEEP_ALIVE: int = inspect.signature(uvicorn.Config).parameters["timeout_keep_alive"].default


@pytest.fixture
def served(settings: Settings, db: Database) -> Iterator[tuple[str, int]]:
    """The app on a free port with the options `python -m api` and the dashboard serve it with."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings, db), log_level="warning", **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:  # the server's own flag: started, or dead
        assert thread.is_alive(), "the api server did not start"
        threading.Event().wait(0.02)
    host, port = sock.getsockname()
    yield host, port
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def test_the_default_outlasts_the_proxies_in_front() -> None:
    assert make_settings("sqlite://").api_keep_alive_seconds > PROXY_IDLE_SECONDS


def test_a_connection_idle_longer_than_uvicorns_default_still_answers(served: tuple[str, int]) -> None:
    host, port = served
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.request("GET", "/api/health")
    first = connection.getresponse()
    first.read()
    assert first.status == 200
    opened = connection.sock
    # Idle past the timeout uvicorn applies when none is given: a server with it closes here,
    # and the next request on this connection gets no answer (http.client: RemoteDisconnected).
    time.sleep(UVICORN_DEFAULT_KEEP_ALIVE + 1)
    connection.request("GET", "/api/health")
    second = connection.getresponse()
    second.read()
    assert second.status == 200
    assert connection.sock is opened  # the same connection, not a new one
    connection.close()


def test_python_m_api_serves_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: dict[str, Any] = {}
    monkeypatch.setenv("LEADFLOW_API_KEEP_ALIVE_SECONDS", "90")
    monkeypatch.setattr(api.__main__, "configure_logging", lambda settings: None)
    monkeypatch.setattr(api.__main__.uvicorn, "run", lambda app, **options: ran.update(options))
    api.__main__.main()
    assert ran["timeout_keep_alive"] == 90
