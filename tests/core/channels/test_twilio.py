"""The Twilio adapter with the official SDK, pointed at a local server standing in for the REST API."""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]

from core.channels.base import NotSent, OutgoingMessage, ProviderCallFailed
from core.channels.twilio_sms import TwilioSender
from core.config import ConfigError, Settings
from core.db import Database
from tests.conftest import make_settings

SID, TOKEN = "AC" + "0" * 32, "token-123"
OPTED_OUT = "+14155550666"
INVALID = "+15005550001"
BROKEN = "+14155550500"
NOT_FOUND = "+14155550404"
PROBLEM = "+14155550422"


class FakeTwilio(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []


class _Handler(BaseHTTPRequestHandler):
    server: FakeTwilio

    def log_message(self, *args: Any) -> None:
        return

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        form = {
            k: v[0]
            for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
        }
        self.server.requests.append(
            {"path": self.path, "form": form, "auth": self.headers.get("Authorization")}
        )
        to = form.get("To")
        if to == OPTED_OUT:
            self._json(
                400,
                {
                    "code": 21610,
                    "message": "Attempt to send to unsubscribed recipient",
                    "more_info": "https://www.twilio.com/docs/errors/21610",
                    "status": 400,
                },
            )
        elif to == INVALID:
            self._json(
                400,
                {
                    "code": 21211,
                    "message": "The 'To' number is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400,
                },
            )
        elif to == BROKEN:
            self._json(500, {"code": 20500, "message": "Internal Server Error", "status": 500})
        elif to == NOT_FOUND:
            # Twilio's answer when the account in the URI is closed or unknown: it names the URI.
            self._json(
                404,
                {
                    "code": 20404,
                    "message": f"The requested resource {self.path} was not found",
                    "more_info": "https://www.twilio.com/docs/errors/20404",
                    "status": 404,
                },
            )
        elif to == PROBLEM:
            # The RFC 9457 shape the SDK turns into a TwilioServiceException.
            self._json(
                503,
                {
                    "type": "https://www.twilio.com/docs/errors/20503",
                    "title": "Service unavailable",
                    "status": 503,
                    "code": 20503,
                    "detail": f"account {SID} is being migrated",
                    "instance": self.path,
                },
            )
        else:
            self._json(
                201,
                {
                    "sid": "SM" + "a" * 32,
                    "status": "queued",
                    "to": to,
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "account_sid": SID,
                    "num_segments": "1",
                },
            )


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def twilio_settings(server: FakeTwilio) -> Settings:
    return make_settings(
        "sqlite://",
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14155550199",
        twilio_status_callback_url="https://acme.example/twilio/status",
        twilio_base_url=f"http://127.0.0.1:{server.server_address[1]}",
    )


def sms(to: str) -> OutgoingMessage:
    return OutgoingMessage(
        tenant_id=1,
        campaign_id=1,
        channel="sms",
        to_address=to,
        body="Hi Ada. Reply STOP to opt out",
        idempotency_key="cl1-s0",
    )


def test_send_posts_the_message_with_callback_and_auth(twilio_server: FakeTwilio, db: Database) -> None:
    receipt = TwilioSender(twilio_settings(twilio_server)).send(sms("+14155550101"), db=db)
    assert receipt.provider_message_id == "SM" + "a" * 32
    request = twilio_server.requests[0]
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["form"] == {
        "To": "+14155550101",
        "From": "+14155550199",
        "Body": "Hi Ada. Reply STOP to opt out",
        "StatusCallback": "https://acme.example/twilio/status",
    }
    assert request["auth"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def test_the_status_callback_is_the_services_webhook_naming_the_ledger_row(
    twilio_server: FakeTwilio, db: Database
) -> None:
    settings = twilio_settings(twilio_server).model_copy(
        update={"twilio_status_callback_url": None, "public_url": "https://leadflow.example.com"}
    )
    TwilioSender(settings).send(sms("+14155550101"), db=db)
    assert twilio_server.requests[0]["form"]["StatusCallback"] == (
        "https://leadflow.example.com/api/webhooks/twilio/status?key=cl1-s0"
    )


def test_an_explicit_status_callback_url_wins_over_the_public_url(
    twilio_server: FakeTwilio, db: Database
) -> None:
    settings = twilio_settings(twilio_server).model_copy(update={"public_url": "https://leadflow.example.com"})
    TwilioSender(settings).send(sms("+14155550101"), db=db)
    assert twilio_server.requests[0]["form"]["StatusCallback"] == "https://acme.example/twilio/status"


def test_without_a_public_url_or_override_no_callback_is_asked(
    twilio_server: FakeTwilio, db: Database
) -> None:
    settings = twilio_settings(twilio_server).model_copy(update={"twilio_status_callback_url": None})
    TwilioSender(settings).send(sms("+14155550101"), db=db)
    assert "StatusCallback" not in twilio_server.requests[0]["form"]


@pytest.mark.parametrize(
    ("to", "opted_out", "permanent"),
    [(OPTED_OUT, True, True), (INVALID, False, True)],
)
def test_error_answers_are_not_sent(
    twilio_server: FakeTwilio, db: Database, to: str, opted_out: bool, permanent: bool
) -> None:
    with pytest.raises(NotSent) as refusal:
        TwilioSender(twilio_settings(twilio_server)).send(sms(to), db=db)
    assert refusal.value.opted_out is opted_out and refusal.value.permanent is permanent


def test_a_server_error_is_not_a_refusal(twilio_server: FakeTwilio, db: Database) -> None:
    # A 5xx may or may not have queued the message: the caller records it as unknown.
    with pytest.raises(ProviderCallFailed) as error:
        TwilioSender(twilio_settings(twilio_server)).send(sms(BROKEN), db=db)
    assert error.value.status == 500 and len(twilio_server.requests) == 1
    assert isinstance(error.value.__cause__, TwilioRestException)  # kept for the server's log


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("to", [NOT_FOUND, BROKEN, PROBLEM])
def test_the_account_sid_never_reaches_the_error_a_user_sees(
    twilio_server: FakeTwilio, db: Database, monkeypatch: pytest.MonkeyPatch, to: str, terminal: bool
) -> None:
    # On a terminal the SDK's own message prints the request URI, which holds the account SID.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal, raising=False)
    with pytest.raises((NotSent, ProviderCallFailed)) as error:
        TwilioSender(twilio_settings(twilio_server)).send(sms(to), db=db)
    cause = error.value.__cause__
    assert cause is not None and SID in f"{cause} {getattr(cause, 'uri', '')}"  # the raw one has it
    shown = f"{error.value} {getattr(error.value, 'reason', '')}"
    assert SID not in shown and SID.lower() not in shown.lower() and TOKEN not in shown
    assert "Twilio" in shown and "\033" not in shown


def test_a_dropped_connection_does_not_show_the_url(db: Database) -> None:
    # Nothing listens there: requests' message names the whole URL, account SID included.
    settings = make_settings(
        "sqlite://",
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14155550199",
        twilio_base_url="http://127.0.0.1:9",
    )
    with pytest.raises((NotSent, ProviderCallFailed)) as error:
        TwilioSender(settings).send(sms("+14155550101"), db=db)
    assert SID in str(error.value.__cause__)
    assert SID not in str(error.value) and "Twilio" in str(error.value)


def test_missing_credentials_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TWILIO"):
        TwilioSender(make_settings("sqlite://", sms_provider="twilio"))
