"""Fixtures: settings that never read the developer's environment, and a fresh migrated database.

The database is a SQLite file per test (copied from one migrated template), or, when
LEADFLOW_TEST_DATABASE_URL is set, that PostgreSQL database migrated once and emptied between
tests. Tests that use the `db` fixture are marked `db` and are the ones CI runs again on
PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import core.auth
import core.config
from core.config import Settings
from core.db import Database
from core.models import Base

TEST_DATABASE_URL = os.environ.get("LEADFLOW_TEST_DATABASE_URL") or None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "db" in fixtures or "database_url" in fixtures:
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("LEADFLOW_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(core.config, "SECRETS_FILE", tmp_path / "no-secrets.toml")
    # bcrypt's cost is a production setting; tests need the behaviour, not the slowness.
    monkeypatch.setattr(core.auth, "BCRYPT_ROUNDS", 4)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "dev_mode": True,
        "migrate_on_start": False,
        "embedded_runner": False,
        "embedded_api": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(make_settings(f"sqlite:///{path}"))
    database.migrate()
    database.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_migrated() -> str | None:
    if TEST_DATABASE_URL is None:
        return None
    database = Database(make_settings(TEST_DATABASE_URL))
    with database.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    database.migrate()
    database.dispose()
    return TEST_DATABASE_URL


def _truncate_postgres(database: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_url(
    tmp_path: Path, _sqlite_template: Path, _postgres_migrated: str | None
) -> str:
    """A migrated, empty database: PostgreSQL when configured, else a fresh SQLite file."""
    if _postgres_migrated is not None:
        database = Database(make_settings(_postgres_migrated))
        _truncate_postgres(database)
        database.dispose()
        return _postgres_migrated
    path = tmp_path / "leadflow.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL URL for tests that need PostgreSQL itself."""
    if TEST_DATABASE_URL is None or not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set LEADFLOW_TEST_DATABASE_URL=postgresql+psycopg://...")
    return TEST_DATABASE_URL
