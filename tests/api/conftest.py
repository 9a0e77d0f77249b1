"""Fixtures for the HTTP service: a real uvicorn server on a free port, in a thread of the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from api.main import create_app
from core.config import Settings
from core.db import Database
from tests.conftest import make_settings

ApiServer = Callable[[Settings, Database], str]

TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
# The URL Twilio calls (a proxy in front of the service): signatures are computed over it.
PUBLIC_URL = "https://leadflow.example.com"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, twilio_auth_token=TWILIO_TOKEN, public_url=PUBLIC_URL)


def twilio_signature(path_and_query: str, params: dict[str, str], *, token: str = TWILIO_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it, with the twilio SDK's own code."""
    return RequestValidator(token).compute_signature(PUBLIC_URL + path_and_query, params)


def post_signed(
    base_url: str, path_and_query: str, params: dict[str, str], *, signature: str | None = None
) -> httpx.Response:
    """A form-encoded POST as Twilio sends it, signed unless a signature is given."""
    headers = {
        "X-Twilio-Signature": signature
        if signature is not None
        else twilio_signature(path_and_query, params),
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": "00000000-0000-0000-0000-000000000000",
    }
    return httpx.post(base_url + path_and_query, data=params, headers=headers, timeout=60)


def incoming_sms(sid: str, body: str, *, sender: str, to: str) -> dict[str, str]:
    """The fields of Twilio's incoming-message webhook."""
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": body,
        "FromCountry": "US",
        "To": to,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def status_callback(sid: str, status: str, *, to: str, error_code: str | None = None) -> dict[str, str]:
    """The fields of Twilio's message status callback."""
    fields = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": to,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+14155550100",
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        fields["ErrorCode"] = error_code
    return fields


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
