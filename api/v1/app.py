"""The `/api/v1` application, mounted on the service's app by api.main.

A FastAPI sub-application rather than a router, so that version 1 has its own OpenAPI document
(`/api/v1/openapi.json`), its own docs (`/api/v1/docs`) and its own error shape (RFC 9457 problem
details) without touching the provider webhooks beside it. It shares the parent's state (settings
and database): `request.app` is this sub-application inside its routes.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.datastructures import State

from api.v1.conventions import ApiConventions
from api.v1.problems import install_problem_handlers
from api.v1.routes import (
    api_keys,
    auth,
    campaigns,
    enrolments,
    leads,
    messages,
    reports,
    suppressions,
    webhooks,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    api_keys.router,
    leads.router,
    suppressions.router,
    messages.router,
    campaigns.router,
    enrolments.router,
    reports.router,
    webhooks.router,
]

DESCRIPTION = """Leadflow's REST API: leads, campaigns, their runs, messages, replies, reports and webhooks.

Every endpoint calls the same core services as the dashboard and the CLI, and the same role table
decides what a caller may do. Errors are RFC 9457 problem details; times are ISO 8601 in UTC; money
is a decimal string in dollars with its currency.

Sign in with `POST /auth/token` (the OAuth2 password flow) and send the access token as
`Authorization: Bearer ...`, or send an API key (made by an admin) as `X-API-Key`. A POST with an
`Idempotency-Key` header runs once; retries get the first answer. Each token's person and each key
may make `LEADFLOW_API_RATE_LIMIT` requests a minute; over it, 429 with `Retry-After`.
"""


def create_v1_app(state: State) -> FastAPI:
    v1 = FastAPI(
        title="Leadflow API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    v1.state = state
    install_problem_handlers(v1)
    # Rate limits and Idempotency-Key for every route (api.v1.conventions): routes do nothing for them.
    v1.add_middleware(ApiConventions, state=state)
    for router in ROUTERS:
        v1.include_router(router)
    return v1
