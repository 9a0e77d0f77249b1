"""Errors as RFC 9457 problem details (`application/problem+json`), with field-level messages.

Core raises LeadflowError subclasses whose messages are written for the person who caused them;
this module only chooses the status and the shape. A request that fails FastAPI's validation gets
422 with one entry per field in `errors` (`{"field": "email", "message": "..."}`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    Conflict,
    LeadflowError,
    LoginRefused,
    NotFound,
    PermissionDenied,
    ValidationError,
)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://leadflow.dev/problems/"

# Most specific first: the first class the error is an instance of decides its status.
STATUS_OF_ERROR: list[tuple[type[LeadflowError], int]] = [
    (LoginRefused, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ValidationError, 422),
    (LeadflowError, 400),
]


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """One problem-details response; `type` defaults to a URI named after the status."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": type_ or PROBLEM_TYPE_BASE + phrase.lower().replace(" ", "-").replace("'", ""),
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: LeadflowError) -> int:
    return next(status for kind, status in STATUS_OF_ERROR if isinstance(error, kind))


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "campaign", "name") -> "campaign.name"; the "body"/"query"/"path" part is dropped.
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[1:]
    return ".".join(parts) or "request"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(LeadflowError)
    async def _leadflow_error(request: Request, error: LeadflowError) -> JSONResponse:
        # `field_errors`: every (field, message) of an error about several fields at once.
        field_errors = getattr(error, "field_errors", None)
        field = getattr(error, "field", None)
        errors: list[dict[str, str]] | None = None
        if field_errors:
            errors = [{"field": str(name), "message": str(message)} for name, message in field_errors]
        elif field:
            errors = [{"field": str(field), "message": str(error)}]
        return problem(status_of(error), str(error), instance=request.url.path, errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(item.get("loc", ())), "message": item.get("msg", "invalid")}
            for item in error.errors()
        ]
        count = len(errors)
        detail = f"{count} field{'s' if count != 1 else ''} could not be accepted; see errors"
        return problem(422, detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(error.headers) if error.headers else None
        return problem(error.status_code, str(error.detail), instance=request.url.path, headers=headers)
