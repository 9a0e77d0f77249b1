"""Rate limits and Idempotency-Key for every /api/v1 route, so that no route does anything for them.

A pure ASGI middleware on the v1 application. For a request with a valid credential it counts
the request against the credential's per-minute limit (core.api_conventions, in the database:
every replica shares the count), answering 429 with Retry-After when over it, and adds the
RateLimit headers to every answer. A POST with an `Idempotency-Key` header is run once per key
and caller: its answer is stored and replayed to retries (with `Idempotent-Replayed: true`); the
same key with another request is a 422 problem, and a retry while the first is running a 409.
Server errors (5xx) are not kept, so that a retry runs the request again. Requests without a
valid credential pass untouched: the route answers them (401, or the token endpoints).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.v1.deps import resolve_caller
from api.v1.problems import problem, status_of
from core.api_conventions import (
    IdempotentRequest,
    RateDecision,
    StoredAnswer,
    abandon_idempotent,
    begin_idempotent,
    check_idempotency_key,
    count_request,
    finish_idempotent,
)
from core.api_tokens import Caller
from core.errors import LeadflowError

IDEMPOTENCY_HEADER = b"idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = (b"content-type", b"location", b"etag")


def rate_headers(decision: RateDecision) -> dict[str, str]:
    # draft-ietf-httpapi-ratelimit-headers: the limit, what is left, seconds until the window resets.
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
        "RateLimit-Policy": f"{decision.limit};w=60",
    }


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class ApiConventions:
    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        db, settings = self.state.database, self.state.settings
        caller = await run_in_threadpool(resolve_caller, scope, db, settings)
        if not isinstance(caller, Caller):
            await self.app(scope, receive, send)
            return
        extra: dict[str, str] = {}
        limit = settings.api_rate_limit
        if limit > 0:
            decision = await run_in_threadpool(count_request, db, caller.credential, limit)
            extra = rate_headers(decision)
            if not decision.allowed:
                response = problem(
                    429,
                    f"more than {limit} requests a minute with this credential; retry in "
                    f"{decision.reset_seconds} seconds",
                    instance=scope.get("path"),
                    headers={**extra, "Retry-After": str(decision.reset_seconds)},
                )
                await response(scope, receive, send)
                return
        send = _with_headers(send, extra)
        key = _header(scope, IDEMPOTENCY_HEADER)
        if scope["method"] != "POST" or key is None:
            await self.app(scope, receive, send)
            return
        await self._idempotent(scope, receive, send, caller, key)

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, caller: Caller, key: str) -> None:
        db, settings = self.state.database, self.state.settings
        body = await _read_body(receive)
        try:
            request = IdempotentRequest(
                tenant_id=caller.actor.tenant_id,
                credential=caller.credential,
                key=check_idempotency_key(key),
                method=scope["method"],
                path=scope["path"] + "?" + scope.get("query_string", b"").decode("latin-1"),
                body=body,
            )
            stored = await run_in_threadpool(begin_idempotent, db, settings, request)
        except LeadflowError as error:
            field = getattr(error, "field", None)
            errors = [{"field": str(field), "message": str(error)}] if field else None
            response = problem(status_of(error), str(error), instance=scope.get("path"), errors=errors)
            await response(scope, receive, send)
            return
        if stored is not None:
            await _replay(stored, send)
            return

        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        settled = False

        async def capture(message: Message) -> None:
            # The answer is kept before its last byte leaves: a retry that follows the answer
            # at once finds it, not a request "still being processed".
            nonlocal status, settled
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() in KEPT_HEADERS:
                        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and not settled:
                    settled = True
                    if status >= 500:
                        await run_in_threadpool(abandon_idempotent, db, request)
                    else:
                        answer = StoredAnswer(status=status, body=b"".join(chunks), headers=headers)
                        await run_in_threadpool(finish_idempotent, db, settings, request, answer)
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            if not settled:
                await run_in_threadpool(abandon_idempotent, db, request)
            raise
        if not settled:
            await run_in_threadpool(abandon_idempotent, db, request)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    if not extra:
        return send
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *encoded]}
        await send(message)

    return sender


async def _replay(stored: StoredAnswer, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers.items()]
    headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})
