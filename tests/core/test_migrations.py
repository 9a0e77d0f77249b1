"""The Alembic migrations and the models describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from core.db import Database, alembic_config
from core.models import Base, Role
from core.sign_in import signed_in_user, start_session
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


NOW = "2026-11-01 09:00:00"
# One row in every table a lead's life touches, at revision 0006 (before row security, sessions,
# sender identity, ...), written as plain SQL so the test does not depend on today's models.
ROWS_AT_0006 = [
    "INSERT INTO tenants (id, name, default_country, quiet_hours_start, quiet_hours_end, weekdays_only,"
    " link_allow_list, playbook, price_overrides, created_at)"
    " VALUES (1, 'Acme', 'US', '08:00', '21:00', 0, '[]', '{}', '{}', :now)",
    "INSERT INTO users (id, tenant_id, username, name, password_hash, role, failed_logins, active,"
    " created_at) VALUES (1, 1, 'olivia', 'Olivia', 'x', 'admin', 0, 1, :now)",
    "INSERT INTO audit_log (id, tenant_id, user_id, action, entity, details, created_at)"
    " VALUES (1, 1, 1, 'create', 'campaign', '{}', :now)",
    "INSERT INTO leads (id, tenant_id, first_name, phone, custom_fields, created_at, updated_at)"
    " VALUES (1, 1, 'Ada', '+14155550100', '{}', :now, :now)",
    "INSERT INTO lead_tags (tenant_id, lead_id, tag) VALUES (1, 1, 'vip')",
    "INSERT INTO suppressions (id, tenant_id, channel, address, reason, created_at)"
    " VALUES (1, 1, 'sms', '+14155550199', 'stop', :now)",
    "INSERT INTO campaigns (id, tenant_id, name, channel, status, system_prompt, variants, model,"
    " temperature, audience, steps, research_web, max_sms_segments, approval_required, created_at,"
    " updated_at, created_by) VALUES (1, 1, 'Spring', 'sms', 'completed', 'Be brief.', '[]',"
    " 'gpt-4o-mini', 0.7, '{}', '[]', 0, 2, 0, :now, :now, 1)",
    "INSERT INTO campaign_leads (id, tenant_id, campaign_id, lead_id, variant, step, status, attempts,"
    " research, guard_result, cost_microusd, input_tokens, output_tokens, created_at, updated_at)"
    " VALUES (1, 1, 1, 1, 'A', 0, 'sent', 1, '[]', '{}', 120, 10, 5, :now, :now)",
    "INSERT INTO messages (id, tenant_id, campaign_id, campaign_lead_id, lead_id, step, channel,"
    " to_address, body, segments, provider, status, idempotency_key, created_at)"
    " VALUES (1, 1, 1, 1, 1, 0, 'sms', '+14155550100', 'Hi Ada', 1, 'outbox', 'sent', 'k-1', :now)",
    "INSERT INTO llm_calls (id, tenant_id, campaign_id, campaign_lead_id, node, provider, model,"
    " input_tokens, output_tokens, cost_microusd, latency_ms, created_at)"
    " VALUES (1, 1, 1, 1, 'compose', 'offline', 'gpt-4o-mini', 10, 5, 120, 3, :now)",
    "INSERT INTO events (id, tenant_id, campaign_id, campaign_lead_id, node, level, message, data,"
    " created_at) VALUES (1, 1, 1, 1, 'send', 'info', 'sent', '{}', :now)",
]
KEPT = ("tenants", "users", "audit_log", "leads", "lead_tags", "suppressions", "campaigns",
        "campaign_leads", "messages", "llm_calls", "events")


def test_upgrading_an_old_sqlite_database_keeps_every_row_and_link(tmp_path: Path) -> None:
    """SQLite changes a table by copying it; with foreign keys enforced, dropping the old copy of
    `tenants` (0009) or `users` (0015) would cascade through every tenant-owned row. Upgrading
    must keep every row and every link, the way `Database.migrate` does it at start-up."""
    database = Database(make_settings(f"sqlite:///{tmp_path / 'old.db'}"))
    _upgrade(database, "0006_drop_redundant_indexes")
    with database.engine.begin() as connection:
        for statement in ROWS_AT_0006:
            connection.execute(text(statement), {"now": NOW})

    database.migrate()

    with database.engine.connect() as connection:
        counts = {t: connection.scalar(text(f"SELECT count(*) FROM {t}")) for t in KEPT}
        links = connection.execute(text(
            "SELECT a.user_id, m.lead_id, m.campaign_lead_id, c.created_by"
            " FROM audit_log a, messages m, campaigns c")).one()
        assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on again after
    assert counts == dict.fromkeys(KEPT, 1)
    assert tuple(links) == (1, 1, 1, 1)
    # And the point of 0015: another tenant may have its own olivia, and olivia still signs in.
    olivia = make_actor(database, make_tenant(database, "Globex"), Role.admin, "olivia")
    assert olivia.user_id != 1
    sign_in = start_session(database, olivia, key="k" * 48, lifetime=timedelta(days=1))
    assert signed_in_user(database, sign_in.session_id).actor.tenant_id == olivia.tenant_id
    database.dispose()


def _downgrade(database: Database, revision: str) -> None:
    from alembic import command

    with database.engine.begin() as connection:
        config = alembic_config(str(database.engine.url))
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_the_send_window_columns_keep_their_values_up_and_down(db: Database) -> None:
    """0021 renames the columns that hold the hours when sending is allowed; values survive both ways."""
    tenant = make_tenant(db, "Window")
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE tenants SET send_window_start = '09:30', send_window_end = '18:00' WHERE id = :id"),
            {"id": tenant},
        )
        connection.execute(text(
            "INSERT INTO campaigns (tenant_id, name, channel, status, system_prompt, variants, model,"
            " temperature, audience, steps, research_web, max_sms_segments, approval_required,"
            " send_window, created_at, updated_at) VALUES (:tenant, 'Spring', 'sms', 'draft', 'Be brief.',"
            " '[]', 'gpt-4o-mini', 0.7, '{}', '[]', false, 2, false, :window, :now, :now)"),
            {"tenant": tenant, "window": '{"start": "10:00", "end": "16:00"}', "now": NOW},
        )
    read_back = (
        "SELECT t.{0}_start, t.{0}_end, c.{1} FROM tenants t JOIN campaigns c ON c.tenant_id = t.id"
    )
    try:
        _downgrade(db, "0020_import_warnings")
        with db.engine.connect() as connection:
            old = connection.execute(text(read_back.format("quiet_hours", "quiet_hours"))).one()
    finally:
        # As a start does: upgraded, and the tables the downgrade dropped (0022's, 0023's) given
        # their row-level security grants again, or later tests on the same database lose them.
        db.migrate()
    with db.engine.connect() as connection:
        new = connection.execute(text(read_back.format("send_window", "send_window"))).one()
    for start, end, window in (old, new):
        assert (start, end) == ("09:30", "18:00")
        stored = json.loads(window) if isinstance(window, str) else window
        assert stored == {"start": "10:00", "end": "16:00"}
