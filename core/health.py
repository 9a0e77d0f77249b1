"""Whether the database answers and is migrated: what health and readiness checks ask."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.db import Database, head_revision
from core.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str | None  # why not, in words; None when ready
    schema: str | None  # the database's schema revision, when it could be read


def database_answers(database: Database) -> bool:
    """True when the database answers a query now; a failure is logged in one line."""
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("database_down", error=str(exc).splitlines()[0])
        return False
    return True


def readiness(database: Database) -> Readiness:
    """Ready when the database answers and its schema is the newest this code knows."""
    if not database_answers(database):
        return Readiness(False, "the database does not answer", None)
    try:
        with database.engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        current = None
    expected = head_revision()
    if expected is not None and current != expected:
        return Readiness(False, f"the database schema is at {current}, not {expected}", current)
    return Readiness(True, None, current)
