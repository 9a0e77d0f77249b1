"""The engine: SQLite pragmas, timezone-aware times, and PostgreSQL's row-level security setup."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, String, Table, text

from core import rls
from core.db import Database, alembic_config, head_revision
from core.models import Base, Tenant
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


# -- row-level security (PostgreSQL) ------------------------------------------------------------


def _secured(conn, table: str) -> tuple[bool, set[str]]:
    enabled = conn.execute(
        text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    )
    policies = conn.execute(text("SELECT policyname FROM pg_policies WHERE tablename = :t"), {"t": table})
    return bool(enabled.scalar()), set(policies.scalars())


POLICIES = {rls.ISOLATION_POLICY, rls.OTHER_ROLES_POLICY}


def test_the_tenant_tables_are_every_table_with_a_tenant_id() -> None:
    names = {t.name for t in rls.tenant_tables(Base.metadata.sorted_tables)}
    assert {"leads", "campaign_leads", "messages", "events", "users", "audit_log"} <= names
    assert names == {t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.c}
    assert "tenants" not in names


@pytest.mark.postgres
def test_every_tenant_table_has_row_level_security(postgres_url: str, db: Database) -> None:
    with db.engine.connect() as conn:
        for table in rls.tenant_tables(Base.metadata.sorted_tables):
            assert _secured(conn, table.name) == (True, POLICIES), table.name
        assert _secured(conn, "tenants") == (False, set())


@pytest.mark.postgres
def test_migrate_puts_back_what_is_missing_and_is_idempotent(postgres_url: str, db: Database) -> None:
    # As for a table that a later migration adds: migrate-on-start gives it its policies.
    try:
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP POLICY {rls.ISOLATION_POLICY} ON events"))
            conn.execute(text("ALTER TABLE events DISABLE ROW LEVEL SECURITY"))
            conn.execute(text(f"REVOKE ALL ON events FROM {rls.TENANT_ROLE}"))
        db.migrate()
        db.migrate()  # the role and every policy exist now: nothing fails, nothing doubles
    finally:
        db.migrate()
    with db.engine.connect() as conn:
        assert _secured(conn, "events") == (True, POLICIES)
        assert conn.execute(
            text("SELECT has_table_privilege(:r, 'events', 'INSERT')"), {"r": rls.TENANT_ROLE}
        ).scalar()


@pytest.mark.postgres
def test_a_new_tenant_table_is_confined_to_its_tenant(postgres_url: str, db: Database) -> None:
    extra = Table(
        "tenancy_test_notes",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("tenant_id", Integer, nullable=False),
        Column("body", String(20)),
    )
    with db.engine.begin() as conn:
        extra.create(conn)
        conn.execute(extra.insert(), [{"tenant_id": 1, "body": "one"}, {"tenant_id": 2, "body": "two"}])
        try:
            assert rls.secure_tenant_tables(conn, [extra]) is True
            with conn.begin_nested():
                rls.enter_tenant(conn, 2)
                assert conn.execute(text("SELECT body FROM tenancy_test_notes")).scalars().all() == ["two"]
        finally:
            conn.execute(text("SET ROLE NONE"))
            extra.drop(conn)


@pytest.mark.postgres
def test_a_user_who_may_not_create_the_role_gets_a_warning_not_a_failure(
    postgres_url: str, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.engine.connect() as conn, conn.begin():
        conn.execute(text("CREATE ROLE tenancy_test_weak NOLOGIN"))
        conn.execute(text("SET LOCAL ROLE tenancy_test_weak"))
        secured = rls.secure_tenant_tables(conn, Base.metadata.sorted_tables, role="tenancy_test_missing")
        assert secured is False
        logged = "".join(capsys.readouterr())
        assert "warning" in logged
        assert "may not create the role tenancy_test_missing" in logged
        assert not rls.wall_is_up(conn, role="tenancy_test_missing")
        conn.rollback()  # the test role goes with the transaction


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


FIRST = "revision = 'a'\ndown_revision = None\n"


@pytest.mark.parametrize(
    "scripts",
    [
        {"a.py": FIRST, "b.py": "revision = 'b'\ndown_revision = None\n"},
        {"a.py": FIRST, "m.py": "revision = 'm'\ndown_revision = ('a', 'x')\n"},
        {"a.py": "revision = make_id()\ndown_revision = None\n"},
    ],
    ids=["two heads", "a merge", "computed"],
)
def test_a_head_that_cannot_be_read_plainly_is_left_to_alembic(
    tmp_path: Path, scripts: dict[str, str]
) -> None:
    for name, body in scripts.items():
        (tmp_path / name).write_text(body)
    assert head_revision(tmp_path) is None


def test_an_up_to_date_sqlite_database_is_not_migrated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(make_settings(f"sqlite:///{tmp_path / 'm.db'}"))
    db.migrate()
    upgrades: list[str] = []
    monkeypatch.setattr("alembic.command.upgrade", lambda _config, revision: upgrades.append(revision))
    db.migrate()
    assert upgrades == []
    with db.engine.begin() as conn:  # as if a newer release brought a migration
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.migrate()
    assert upgrades == ["head"]
    db.dispose()
