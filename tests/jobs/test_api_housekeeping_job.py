"""The runner forgets what the REST API keeps for a while (core.api_conventions.api_housekeeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core.api_conventions import IdempotentRequest, begin_idempotent
from core.config import Settings
from core.db import Database
from core.models import ApiIdempotencyKey, Role
from jobs.runner import Runner
from tests.factories import make_actor, make_tenant


def test_the_runner_tick_deletes_answers_older_than_a_day(db: Database, settings: Settings) -> None:
    actor = make_actor(db, make_tenant(db), Role.admin)
    now = datetime.now(UTC)
    for key, age in (("old", timedelta(hours=25)), ("new", timedelta(hours=1))):
        request = IdempotentRequest(actor.tenant_id, f"user:{actor.user_id}", key, "POST", "/api/v1/x?", b"")
        begin_idempotent(db, settings, request, now=now - age)
    Runner(db, settings).api_housekeeping_tick()
    with db.session(system=True, read_only=True) as session:
        assert session.scalar(select(func.count(ApiIdempotencyKey.id))) == 1
