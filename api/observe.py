"""The HTTP service's requests counted, timed and traced: one pure ASGI middleware on the app.

The route label is the matched route's template with its mount's prefix
(`/api/v1/leads/{lead_id}`), never the raw path, and "unmatched" when no route matched, so the
series stay bounded whatever paths clients send. The span, when tracing is on, continues the
caller's trace (W3C `traceparent`) and is named "METHOD route" once the route is known.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics, tracing

UNMATCHED = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that answered, with the prefixes of the mounts it sits in.

    Routing writes FastAPI's route into the request's scope (Starlette's own routes, such as the
    OpenAPI document's, leave only their endpoint: their route is found among the answering
    app's routes). A mount adds its path to `root_path`, so what the mounts added is `root_path`
    now less what it was when the request came in.
    """
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        path = _path_of_endpoint(scope.get("app"), scope.get("endpoint"))
        if path is None:
            return UNMATCHED
    mounted = str(scope.get("root_path", ""))[len(root_path) :]
    return mounted + path


# Endpoint -> its route's path, found once (a handful of Starlette routes: the docs, OpenAPI).
_endpoint_paths: dict[Any, str | None] = {}


def _path_of_endpoint(app: Any, endpoint: Any) -> str | None:
    if endpoint is None or app is None:
        return None
    if endpoint not in _endpoint_paths:
        routes = getattr(app, "routes", [])
        _endpoint_paths[endpoint] = next(
            (r.path for r in routes if getattr(r, "endpoint", None) is endpoint and isinstance(r.path, str)),
            None,
        )
    return _endpoint_paths[endpoint]


class ObservedRequests:
    """Counts every HTTP request by method, route template and status, with its duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        raw_method = str(scope.get("method", ""))
        method = raw_method if raw_method in KNOWN_METHODS else "OTHER"
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the client gets when the app raises before it answers
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            self._count(method, route_template(scope, root_path), status, started)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body") and not counted:
                count()  # before the last byte leaves: a client holding its answer finds it counted
            await send(message)

        if not tracing.active():
            try:
                await self.app(scope, receive, send_status)
            finally:
                if not counted:
                    count()
            return
        with tracing.request_span(method, _headers(scope), _request_attributes(scope, raw_method)) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                if not counted:
                    count()
                route = route_template(scope, root_path)
                tracing.request_answered(span, method, None if route == UNMATCHED else route, status)

    @staticmethod
    def _count(method: str, route: str, status: int, started: float) -> None:
        metrics.http_requests(method, route, str(status)).inc()
        metrics.http_request_seconds(method, route).observe(perf_counter() - started)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _request_attributes(scope: Scope, method: str) -> dict[str, Any]:
    return {
        "http.request.method": method,
        "url.path": str(scope.get("path", "")),
        "url.scheme": str(scope.get("scheme", "http")),
    }
