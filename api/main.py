"""The FastAPI application: settings, database and routers assembled, nothing else.

`create_app` takes its settings and database (tests pass their own); without a database it opens
the configured one when the service starts (migrating it when `migrate_on_start` says so) and
disposes of it when the service stops. `uvicorn api.main:app` gets an app built from the
environment; `python -m api` does the same on LEADFLOW_API_HOST:LEADFLOW_API_PORT.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.observe import ObservedRequests
from api.routes import health, metrics, twilio, unsubscribe
from api.v1.app import create_v1_app
from core.config import Settings
from core.db import Database, open_database
from core.tracing import setup_tracing

ROUTERS = [health.router, metrics.router, twilio.router, unsubscribe.router]


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Access tokens, unsubscribe links and stored idempotent answers are keyed by it: a service
        # without a strong key does not start, rather than failing every such request.
        settings.require_cookie_key()
        if owns_database:
            app.state.database = await run_in_threadpool(open_database, settings)
            # A service in a process of its own: what start-up made (modules, models, about 200,000
            # objects) lives as long as the process; out of the collector's sight, a full
            # collection no longer walks it, which cut that pause about fourfold (and the p99 of
            # every request with it). Tests, which pass their database, keep their collector whole.
            gc.freeze()
        try:
            yield
        finally:
            if owns_database:
                app.state.database.dispose()

    app = FastAPI(
        title="Leadflow",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.database = database
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/api/v1", create_v1_app(app.state))
    # Counted and traced around everything, mounts included, so every route has its template.
    app.add_middleware(ObservedRequests)
    setup_tracing(settings, process="api")
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn api.main:app`: the app is built when asked for, so importing this module (tests,
    # the dashboard) reads no environment and opens no database.
    if name == "app":
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
