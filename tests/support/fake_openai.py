"""A local OpenAI-compatible server for tests and benchmarks: `/v1/chat/completions` with usage.

It is a real HTTP server (threads, 127.0.0.1, an ephemeral port), so the real OpenAI client is
exercised end to end. Behaviour is configurable while it runs: latency, a requests-per-second
limit answered with 429 and `Retry-After`, scripted failures (a 5xx, a 429, a hang, and the
account's refusals: 401 invalid_api_key, 403, 429 insufficient_quota, each with OpenAI's own
body), and the completion itself.

    with FakeOpenAI(latency=0.05, rps_limit=20) as server:
        settings = make_settings(url, llm_provider="openai", openai_base_url=server.base_url)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

Failure = Literal["500", "429", "hang", "insufficient_quota", "401", "403"]
# The bodies OpenAI answers a refused key and a key without the needed permission with.
INVALID_API_KEY_BODY = {
    "error": {
        "message": "Incorrect API key provided: sk-test. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
PERMISSION_DENIED_BODY = {
    "error": {
        "message": "You have insufficient permissions for this operation. Missing scopes: "
        "model.request. Check that you have the correct role in your organization "
        "(org-TESTORGANISATION42).",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}
CompletionFn = Callable[[dict[str, Any]], str]


def estimate_tokens(text: str) -> int:
    """The same rough estimate as the offline model: a token is about four characters."""
    return max(1, (len(text) + 3) // 4)


def default_completion(request: dict[str, Any]) -> str:
    """A plain, harmless completion that names the last user message's length."""
    messages = request.get("messages") or [{}]
    last = str(messages[-1].get("content", ""))
    return f"Hello from the test server ({len(last)} characters read). Reply STOP to opt out"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True
    owner: FakeOpenAI


class FakeOpenAI:
    """The server, its run-time knobs and its counters; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        rps_limit: float | None = None,
        retry_after_seconds: float = 1.0,
        completion: CompletionFn = default_completion,
        hang_seconds: float = 60.0,
    ) -> None:
        self.latency = latency
        self.rps_limit = rps_limit
        self.retry_after_seconds = retry_after_seconds
        self.completion = completion
        self.hang_seconds = hang_seconds
        self.requests = 0
        self.rate_limited = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.received: list[dict[str, Any]] = []
        # Every request is answered with this failure while it is set (a revoked key, an empty
        # account); the scripted `fail_next` failures come first.
        self.failing: Failure | None = None
        self._failures: deque[Failure] = deque()
        self._window: deque[float] = deque()
        self._lock = threading.Lock()
        self._release_hangs = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------

    def fail_next(self, *failures: Failure) -> None:
        """Answer the next requests with these failures, in order, then normally again."""
        with self._lock:
            self._failures.extend(failures)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests = self.rate_limited = self.max_in_flight = 0
            self.received.clear()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-openai"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release_hangs.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- request handling (called from handler threads) -------------------------------------

    def _admit(self, body: dict[str, Any]) -> Failure | None:
        """Count the request and decide whether it fails; returns the failure to answer with."""
        with self._lock:
            self.requests += 1
            self.received.append(body)
            if self._failures:
                failure = self._failures.popleft()
                if failure == "429":
                    self.rate_limited += 1
                return failure
            if self.failing is not None:
                return self.failing
            if self.rps_limit is not None:
                now = time.monotonic()
                while self._window and now - self._window[0] >= 1.0:
                    self._window.popleft()
                if len(self._window) >= self.rps_limit:
                    self.rate_limited += 1
                    return "429"
                self._window.append(now)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return None

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _completion_body(self, request: dict[str, Any]) -> dict[str, Any]:
        text = self.completion(request)
        finish_reason = "stop"
        # As OpenAI does: the output stops at the request's limit (`max_tokens` is the older name).
        limit = request.get("max_completion_tokens", request.get("max_tokens"))
        if limit is not None and estimate_tokens(text) > int(limit):
            text, finish_reason = text[: max(1, int(limit)) * 4], "length"
        prompt = "".join(str(m.get("content", "")) for m in request.get("messages", []))
        prompt_tokens = estimate_tokens(prompt)
        completion_tokens = estimate_tokens(text)
        return {
            "id": f"chatcmpl-fake-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "gpt-4o-mini"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._reply(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        fake = self.server.owner
        request = json.loads(raw or b"{}")
        failure = fake._admit(request)
        if failure == "429":
            self._reply(
                429,
                {
                    "error": {
                        "message": "Rate limit reached for requests",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                {"Retry-After": f"{fake.retry_after_seconds:g}"},
            )
            return
        if failure == "insufficient_quota":
            self._reply(
                429,
                {
                    "error": {
                        "message": "You exceeded your current quota, please check your plan "
                        "and billing details.",
                        "type": "insufficient_quota",
                        "code": "insufficient_quota",
                    }
                },
            )
            return
        if failure == "401":
            self._reply(401, INVALID_API_KEY_BODY)
            return
        if failure == "403":
            self._reply(403, PERMISSION_DENIED_BODY)
            return
        if failure == "500":
            self._reply(500, {"error": {"message": "The server had an error", "type": "server_error"}})
            return
        if failure == "hang":
            fake._release_hangs.wait(fake.hang_seconds)
            self.close_connection = True
            return
        try:
            if fake.latency:
                time.sleep(fake.latency)
            self._reply(200, fake._completion_body(request))
        finally:
            fake._done()
