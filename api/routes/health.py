"""Health and readiness: for load balancers, compose health checks and monitoring."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import DatabaseDep
from core.db import Database, head_revision
from core.logs import get_logger

log = get_logger(__name__)

router = APIRouter()


def _database_answers(database: Database) -> bool:
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("api_health_database_down", error=str(exc).splitlines()[0])
        return False
    return True


def _schema_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@router.get("/api/health")
def health(database: DatabaseDep) -> JSONResponse:
    """200 when the service runs and its database answers a query; 503 when it does not."""
    if _database_answers(database):
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)


@router.get("/api/ready")
def ready(database: DatabaseDep) -> JSONResponse:
    """200 when the database answers and its schema is the newest this code knows (the service
    can take traffic); 503 with the reason otherwise (down, or not migrated yet)."""
    if not _database_answers(database):
        return JSONResponse({"status": "not ready", "reason": "the database does not answer"}, 503)
    try:
        current = _schema_revision(database)
    except SQLAlchemyError:
        current = None
    expected = head_revision()
    if expected is not None and current != expected:
        return JSONResponse(
            {"status": "not ready", "reason": f"the database schema is at {current}, not {expected}"}, 503
        )
    return JSONResponse({"status": "ready", "schema": current})
