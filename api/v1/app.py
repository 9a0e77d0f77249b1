"""The `/api/v1` application, mounted on the service's app by api.main.

A FastAPI sub-application rather than a router, so that version 1 has its own OpenAPI document
(`/api/v1/openapi.json`), its own docs (`/api/v1/docs`) and its own error shape (RFC 9457 problem
details) without touching the provider webhooks beside it. It shares the parent's state (settings
and database): `request.app` is this sub-application inside its routes.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.datastructures import State

from api.v1.problems import install_problem_handlers
from api.v1.routes import webhooks

ROUTERS: list[APIRouter] = [webhooks.router]

DESCRIPTION = """Leadflow's REST API: leads, campaigns, their runs, messages, replies, reports and webhooks.

Every endpoint calls the same core services as the dashboard and the CLI, and the same role table
decides what a caller may do. Errors are RFC 9457 problem details; times are ISO 8601 in UTC; money
is a decimal string in dollars with its currency.
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
    for router in ROUTERS:
        v1.include_router(router)
    return v1
