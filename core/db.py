"""Engine and session factory, SQLite pragmas, tenant-scoped sessions, and migrate-on-start.

Tenant isolation is decided in core.tenant_guard, whose hooks every session of `Database` runs:
every session is opened either for one tenant (`Database.session(tenant_id=...)`) or explicitly
as a system session (`system=True`, for the job runner, the login and the CLI's cross-tenant
commands). The guard's public names (`TenantScopeError`, `execute_core`, `tenant_pinned`,
`trusted_sql`) are importable from here too, with the session they belong to.

On PostgreSQL a second wall stands behind this one (core.rls): each tenant transaction runs as a
role that row-level security policies confine to the tenant's rows.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool, StaticPool

from core import rls
from core.config import ROOT, Settings
from core.logs import get_logger
from core.models import Base
from core.tenant_guard import (
    PINNED_TENANT_PARAM,
    SYSTEM_KEY,
    TENANT_KEY,
    TenantScopeError,
    check_flush,
    execute_core,
    scope_orm_statement,
    tenant_pinned,
    trusted_sql,
)

__all__ = [
    "PINNED_TENANT_PARAM",
    "SYSTEM_KEY",
    "TENANT_KEY",
    "Database",
    "TenantScopeError",
    "alembic_config",
    "execute_core",
    "head_revision",
    "make_engine",
    "open_database",
    "tenant_pinned",
    "trusted_sql",
    "commit_without_waiting_for_disk",
]

log = get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "leadflow_read_only"


def _apply_sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while the runner writes; busy_timeout makes writers queue
    # instead of failing with "database is locked"; SQLite leaves foreign keys off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A write transaction that starts as a reader and upgrades later can fail with SQLITE_BUSY
    # without waiting; taking the write lock at BEGIN makes busy_timeout apply. Read-only
    # sessions (the dashboard) begin deferred so they read a WAL snapshot and never queue.
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        memory = url.database in (None, "", ":memory:")
        pool: dict[str, Any] = (
            {"poolclass": StaticPool}
            if memory
            else {
                "poolclass": QueuePool,
                "pool_size": settings.db_pool_size,
                "max_overflow": settings.db_max_overflow,
            }
        )
        engine = create_engine(
            url,
            echo=settings.db_echo,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "isolation_level": None,
            },
            **pool,
        )
        event.listen(engine, "connect", _apply_sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        _with_psycopg(url),
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
    )


def _with_psycopg(url: URL) -> URL:
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    return url


class Database:
    """The engine and the scoped session factory for one database URL."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._read_factory = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        for factory in (self._factory, self._read_factory):
            event.listen(factory, "do_orm_execute", scope_orm_statement)
            event.listen(factory, "before_flush", check_flush)
            event.listen(factory, "after_begin", self._enter_tenant)
        self._postgres = self.engine.dialect.name == "postgresql"
        self._row_security: bool | None = None  # known at the first tenant transaction

    def _enter_tenant(self, session: Session, _transaction: object, connection: Connection) -> None:
        # Every transaction of a tenant session, the first and each one after a commit, runs
        # as the row-level-security role with the tenant set; both end with the transaction.
        tenant_id = session.info.get(TENANT_KEY)
        if tenant_id is None or not self._postgres:
            return
        if self._row_security is None:
            self._row_security = rls.wall_is_up(connection)
            if not self._row_security:
                log.warning(
                    "PostgreSQL row-level security is not set up: tenant isolation rests on the "
                    "session guard alone (see the README, Run it in production)",
                    role=rls.TENANT_ROLE,
                )
        if self._row_security:
            rls.enter_tenant(connection, tenant_id)

    @property
    def row_security(self) -> bool:
        """Whether tenant transactions run under PostgreSQL row-level security (after the first)."""
        return bool(self._row_security)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(
        self, *, tenant_id: int | None = None, system: bool = False, read_only: bool = False
    ) -> Session:
        """A new session for one tenant, or a system session that sees every tenant.

        `read_only=True` is for sessions that only read (pages, reports): on SQLite they take
        no write lock, so they never wait behind the runner or an import.
        """
        if tenant_id is None and not system:
            raise TenantScopeError("a session needs a tenant_id, or system=True")
        if tenant_id is not None and system:
            raise TenantScopeError("a session is either for one tenant or a system session")
        factory = self._read_factory if read_only else self._factory
        return factory(info={TENANT_KEY: tenant_id, SYSTEM_KEY: system})

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        if self.is_sqlite and self._sqlite_schema_is_current():
            return
        from alembic import command

        with self.engine.connect() as connection, _sqlite_foreign_keys_off(connection):
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Several workers and the app may start at once; one migrates, the others
                    # wait (the lock is released with the transaction).
                    connection.execute(text("SELECT pg_advisory_xact_lock(724002)"))
                config = alembic_config(self.settings.database_url)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if connection.dialect.name == "postgresql":
                    # Tables that later migrations added get their policy here.
                    rls.secure_tenant_tables(connection, Base.metadata.sorted_tables)
                _refuse_broken_foreign_keys(connection)
        self._row_security = None

    def _sqlite_schema_is_current(self) -> bool:
        """Whether the database is at the one head revision: then migrating loads no Alembic.

        Alembic imports every migration script to find the head, which costs more than the
        rest of a first page; a restart of an up-to-date database (the usual start) skips it.
        On PostgreSQL every start migrates, because that also secures the tables (core.rls).
        """
        head = head_revision()
        if head is None:
            return False
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return False
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return list(versions) == [head]

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign keys off on this SQLite connection while the schema changes, on again after.

    SQLite alters a table by copying it and dropping the original; with foreign keys enforced,
    dropping `tenants` or `users` would cascade through every row that refers to them. The
    pragma is a no-op inside a transaction, so it is set on the driver's connection before one
    begins (Alembic's documented recipe for batch migrations).
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _refuse_broken_foreign_keys(connection: Connection) -> None:
    """Roll the migration back rather than leave rows pointing at nothing (SQLite only: there
    the checks were off while the tables were copied)."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.execute(text("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(
            f"the migration would leave {len(broken)} rows with broken references: "
            + ", ".join(sorted({str(row[0]) for row in broken}))
        )


MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^(down_)?revision\b[^=\n]*=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(['"])([^'"]+)\1$""")


def commit_without_waiting_for_disk(session: Session) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL).

    For rows whose loss in a crash costs nothing, or that a later synchronous commit makes durable
    anyway (WAL is flushed in order): each saves the caller an fsync. SQLite: nothing changes.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(trusted_sql("SET LOCAL synchronous_commit = off"))


def head_revision(folder: Path = MIGRATIONS) -> str | None:
    """The newest migration's revision, read from the scripts' text without importing them.

    None when it cannot be read plainly (a merge, a revision computed in code, two heads):
    then Alembic decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in folder.glob("*.py"):
        found = {bool(down): value for down, value in _REVISION.findall(script.read_text())}
        revision = _QUOTED.match(found.get(False, ""))
        parent = found.get(True)
        if revision is None or parent is None:
            return None
        revisions.add(revision.group(2))
        if parent != "None":
            quoted = _QUOTED.match(parent)
            if quoted is None:
                return None
            parents.add(quoted.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def open_database(settings: Settings) -> Database:
    """The database the app, the CLI and the workers use: migrated when the setting says so."""
    database = Database(settings)
    if settings.migrate_on_start:
        database.migrate()
    return database
