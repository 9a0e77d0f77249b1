"""Fixtures for /api/v1: a real uvicorn server, and clients that call it as a given actor.

`v1.client(actor)` is an httpx client whose requests carry that actor's credentials: a real
access token, checked by the same `current_actor` as in production.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.main import create_app
from core.api_tokens import start_api_sign_in
from core.config import Settings
from core.db import Database
from core.permissions import Actor


@dataclass
class V1Api:
    url: str  # the service's base URL; the API is under url + "/api/v1"
    db: Database
    settings: Settings
    app: FastAPI
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.url + "/api/v1"

    def auth_headers(self, actor: Actor) -> dict[str, str]:
        """Real credentials of `actor` (a user made by tests.factories.make_actor): a bearer
        access token of a new API sign-in, minted by core as POST /auth/token would."""
        if actor.user_id is None:
            raise ValueError("auth_headers needs a person (actor.user_id); give machines an API key")
        pair = start_api_sign_in(self.db, self.settings, actor)
        return {"Authorization": f"Bearer {pair.access_token}"}

    def client(self, actor: Actor | None = None) -> httpx.Client:
        headers = self.auth_headers(actor) if actor is not None else {}
        client = httpx.Client(base_url=self.base, headers=headers, timeout=60)
        self.clients.append(client)
        return client


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def v1(settings: Settings, db: Database) -> Iterator[V1Api]:
    """The service on a free port with this test's settings and database."""
    app = create_app(settings, db)
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    host, port = sock.getsockname()
    api = V1Api(url=f"http://{host}:{port}", db=db, settings=settings, app=app)
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the api server did not start")
        threading.Event().wait(0.02)
    try:
        yield api
    finally:
        for client in api.clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 problem document of `response`, checked to have this status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body
