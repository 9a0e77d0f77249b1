"""The Alembic migrations and the models describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from core.auth import signed_in_user, start_session
from core.db import Database, alembic_config
from core.models import AuditLog, Base, Role
from tests.conftest import make_settings
from tests.factories import make_actor, make_tenant


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_every_model_table_exists_after_migrating(db: Database) -> None:
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())


def test_one_head_revision() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_migrate_is_idempotent(db: Database) -> None:
    db.migrate()
    db.migrate()
    with db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert current == script.get_current_head()


def _upgrade(database: Database, revision: str) -> None:
    from alembic import command

    with database.engine.begin() as connection:
        config = alembic_config(str(database.engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_usernames_per_tenant_keeps_who_did_what_and_every_sign_in_on_sqlite(tmp_path: Path) -> None:
    # SQLite copies `users` to change its unique constraint; with foreign keys on, dropping the
    # old copy would null the audit log's users and delete every sign-in session.
    database = Database(make_settings(f"sqlite:///{tmp_path / 'old.db'}"))
    _upgrade(database, "0014_lead_alternates")
    olivia = make_actor(database, make_tenant(database, "Acme"), Role.admin, "olivia")
    sign_in = start_session(database, olivia, key="k" * 48, lifetime=timedelta(days=1))
    with database.session(system=True, read_only=True) as session:
        audited = session.scalars(select(AuditLog.user_id)).all()
    assert audited == [None]  # create_user by the system actor: no user recorded
    record = AuditLog(tenant_id=olivia.tenant_id, user_id=olivia.user_id, action="x", entity="y",
                      details={})
    with database.session(system=True) as session, session.begin():
        session.add(record)

    _upgrade(database, "head")

    with database.session(system=True, read_only=True) as session:
        assert session.scalar(select(AuditLog.user_id).where(AuditLog.action == "x")) == olivia.user_id
    assert signed_in_user(database, sign_in.session_id).actor.username == "olivia"
    # And the point of it: another tenant may have its own olivia.
    other = make_actor(database, make_tenant(database, "Globex"), Role.admin, "olivia")
    assert other.user_id != olivia.user_id
    database.dispose()
