"""Health and readiness: for load balancers, compose health checks and monitoring."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DatabaseDep
from core.health import database_answers, readiness

router = APIRouter()


@router.get("/api/health")
def health(database: DatabaseDep) -> JSONResponse:
    """200 when the service runs and its database answers a query; 503 when it does not."""
    if database_answers(database):
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


@router.get("/api/ready")
def ready(database: DatabaseDep) -> JSONResponse:
    """200 when the database answers and its schema is the newest this code knows (the service
    can take traffic); 503 with the reason otherwise (down, or not migrated yet)."""
    state = readiness(database)
    if not state.ready:
        return JSONResponse({"status": "not ready", "reason": state.reason}, 503)
    return JSONResponse({"status": "ready", "schema": state.schema})
