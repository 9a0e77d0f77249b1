"""The job runners' heartbeats, for the monitor: who is alive and how busy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.db import Database
from core.models import WorkerHeartbeat
from core.permissions import Actor, Permission

# How often a job runner writes its heartbeat (jobs.runner), so the monitor knows who is alive.
HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerView:
    worker_id: str
    hostname: str
    pid: int
    mode: str
    started_at: datetime
    last_seen_at: datetime
    in_flight: int
    processed: int
    alive: bool


def list_workers(
    db: Database, actor: Actor, *, now: datetime | None = None, stale_after: timedelta | None = None
) -> list[WorkerView]:
    """The job runners that reported a heartbeat; `alive` when seen within `stale_after`."""
    actor.require(Permission.view_monitor)
    now = now or datetime.now(UTC)
    # Three missed heartbeats mean the worker is gone.
    stale_after = stale_after or timedelta(seconds=3 * max(HEARTBEAT_SECONDS, db.settings.tick_seconds))
    with db.session(system=True, read_only=True) as session:
        rows = session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen_at.desc()))
        return [
            WorkerView(w.worker_id, w.hostname, w.pid, w.mode, w.started_at, w.last_seen_at,
                       w.in_flight, w.processed, now - w.last_seen_at <= stale_after)
            for w in rows
        ]
