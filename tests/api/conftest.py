"""Fixtures for the HTTP service: a real uvicorn server on a free port, in a thread of the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

from api.main import create_app
from core.config import Settings
from core.db import Database

ApiServer = Callable[[Settings, Database], str]


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """`api_server(settings, db)` starts the app on a free port and returns its base URL; every
    server started is stopped when the test ends."""
    started: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(settings: Settings, db: Database) -> str:
        sock = _free_socket()
        config = uvicorn.Config(create_app(settings, db), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread, sock))
        host, port = sock.getsockname()
        base_url = f"http://{host}:{port}"
        _wait_until_up(server, thread, base_url)
        return base_url

    yield start
    for server, thread, sock in started:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_until_up(server: uvicorn.Server, thread: threading.Thread, base_url: str) -> None:
    # Polls the server's own flag (not the clock's notion of "fast enough"): started or dead.
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the api server at {base_url} did not start")
        threading.Event().wait(0.02)
    httpx.get(f"{base_url}/api/health", timeout=30)
