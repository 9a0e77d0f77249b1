"""The engine: SQLite pragmas and timezone-aware times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from core.db import Database
from core.models import Tenant
from tests.conftest import make_settings


def test_sqlite_pragmas(tmp_path) -> None:
    db = Database(make_settings(f"sqlite:///{tmp_path / 'p.db'}"))
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    db.dispose()


def test_times_come_back_aware_utc(db: Database) -> None:
    local = datetime(2026, 3, 8, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    with db.session(system=True) as s, s.begin():
        tenant = Tenant(name="T", created_at=local)
        s.add(tenant)
    with db.session(system=True) as s:
        stored = s.get(Tenant, tenant.id)
        assert stored is not None
        assert stored.created_at == local
        assert stored.created_at.tzinfo is not None
        assert stored.created_at.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        with db.session(system=True) as s, s.begin():
            s.add(Tenant(name="N", created_at=datetime(2026, 1, 1)))
