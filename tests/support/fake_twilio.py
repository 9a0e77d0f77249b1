"""A local server answering as Twilio's Messages API does, for the real SDK: scripted numbers fail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SID, TOKEN = "AC" + "0" * 32, "token-123"
MESSAGE_SID = "SM" + "a" * 32  # the sid of every message the server accepts
# Numbers the server refuses as Twilio would: each with Twilio's own error.
OPTED_OUT = "+14155550666"
INVALID = "+15005550001"
BROKEN = "+14155550500"
NOT_FOUND = "+14155550404"
PROBLEM = "+14155550422"


class FakeTwilio(ThreadingHTTPServer):
    """`requests`: every POST (path, form, Authorization); `auth_refused`: answer 401 (error 20003)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TwilioHandler)
        self.requests: list[dict[str, Any]] = []
        self.auth_refused = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _TwilioHandler(BaseHTTPRequestHandler):
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
        if self.server.auth_refused:
            self._json(
                401,
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
            )
            return
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
                    "sid": MESSAGE_SID,
                    "status": "queued",
                    "to": to,
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "account_sid": SID,
                    "num_segments": "1",
                },
            )


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
