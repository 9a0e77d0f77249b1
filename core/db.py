"""Engine and session factory, SQLite pragmas, tenant scoping, and migrate-on-start.

Tenant isolation lives here and only here: every session is opened either for one tenant
(`Database.session(tenant_id=...)`) or explicitly as a system session (`system=True`, for the
job runner, the login and the CLI's cross-tenant commands). In a tenant session every ORM
SELECT, UPDATE and DELETE that touches a tenant-owned table gets `tenant_id = :tenant` added by
`with_loader_criteria`, and every new or changed row is checked before it is flushed. A session
with neither refuses to touch tenant-owned tables at all, so a forgotten scope is an error, not a
leak. Prebuilt Core statements on a hot path run with `execute_core`, under the same rule
(see there).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Delete,
    Engine,
    Executable,
    Table,
    Update,
    bindparam,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import URL, CursorResult, make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.sql import visitors

from core.config import ROOT, Settings
from core.models import TENANT_TABLE_NAMES, TenantOwned

TENANT_KEY = "tenant_id"
SYSTEM_KEY = "system"
SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "leadflow_read_only"


UpdateOrDelete = TypeVar("UpdateOrDelete", Update, Delete)


class TenantScopeError(RuntimeError):
    """A query or write crossed, or forgot, its tenant scope."""


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
            else {"poolclass": QueuePool, "pool_size": settings.db_pool_size,
                  "max_overflow": settings.db_max_overflow}
        )
        engine = create_engine(
            url,
            echo=settings.db_echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                          "isolation_level": None},
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


def _scope_orm_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria added to the parent statement already apply
    info = state.session.info
    if info.get(SYSTEM_KEY):
        return
    tenant_id = info.get(TENANT_KEY)
    scoped_entity = any(issubclass(mapper.class_, TenantOwned) for mapper in state.all_mappers)
    if not scoped_entity:
        if _tenant_tables_in(state.statement):
            # The loader criteria only reach a statement that selects a tenant-owned entity or
            # column at its top level; anything else would run unscoped, so it is refused.
            raise TenantScopeError(
                "this statement reads a tenant-owned table without selecting one of its "
                "entities or columns at the top level (e.g. select(func.count()).select_from(Lead)); "
                "write select(func.count(Lead.id)) or select from the entity instead"
            )
        return
    if tenant_id is None:
        raise TenantScopeError(
            "a query on a tenant-owned table ran in a session with no tenant; "
            "open it with Database.session(tenant_id=...) or system=True"
        )
    if state.is_insert:
        _check_insert_parameters(state, tenant_id)
        return
    if state.is_update and state.is_executemany:
        # ORM bulk UPDATE by primary key (a list of parameter dicts) does not apply loader
        # criteria; the tenant goes into its WHERE clause instead, next to each row's key.
        # SQLAlchemy cannot synchronise loaded objects with that WHERE, so it is switched off:
        # objects already loaded in this session keep their old values until refreshed.
        mapper = next(m for m in state.all_mappers if issubclass(m.class_, TenantOwned))
        statement = cast(Update, state.statement)
        state.statement = statement.where(mapper.class_.tenant_id == tenant_id).execution_options(
            synchronize_session=None
        )
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = _scoped_statement(state.statement, tenant_id)


# Statements a service keeps and runs again and again (the pipeline's per-lead UPDATEs) get
# their tenant criteria once per tenant: adding the option builds a new statement, whose SQL
# cache key and lambda criteria SQLAlchemy must then work out again on every execution.
# Statements are immutable, so the scoped one can be shared; the cache is bounded, and a
# statement built afresh for each call simply never hits it.
_SCOPED_STATEMENTS_MAX = 1024
_scoped_statements: dict[tuple[Any, int], Any] = {}


def _scoped_statement(statement: Any, tenant_id: int) -> Any:
    key = (statement, tenant_id)
    scoped = _scoped_statements.get(key)
    if scoped is None:
        scoped = statement.options(
            with_loader_criteria(
                TenantOwned,
                lambda cls: cls.tenant_id == tenant_id,
                include_aliases=True,
            )
        )
        if len(_scoped_statements) >= _SCOPED_STATEMENTS_MAX:
            _scoped_statements.clear()
        _scoped_statements[key] = scoped
    return scoped


def _tenant_tables_in(statement: Any) -> bool:
    return any(
        isinstance(element, Table) and element.name in TENANT_TABLE_NAMES
        for element in visitors.iterate(statement)
    )


def _check_insert_parameters(state: ORMExecuteState, tenant_id: int) -> None:
    params = state.parameters
    rows = params if isinstance(params, list) else [params] if params else []
    for row in rows:
        if isinstance(row, dict) and row.get("tenant_id", tenant_id) != tenant_id:
            raise TenantScopeError(
                f"insert for tenant {row.get('tenant_id')} in tenant {tenant_id}'s session"
            )


def _check_flush(session: Session, _context: object, _instances: object) -> None:
    if session.info.get(SYSTEM_KEY):
        return
    tenant_id = session.info.get(TENANT_KEY)
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantOwned):
            continue
        if tenant_id is None:
            raise TenantScopeError("a tenant-owned row was written in a session with no tenant")
        if obj in session.new and obj.tenant_id is None:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise TenantScopeError(
                f"{type(obj).__name__} of tenant {obj.tenant_id} written in tenant {tenant_id}'s session"
            )
        history = inspect(obj).attrs.tenant_id.history
        if obj not in session.new and history.has_changes():
            raise TenantScopeError(f"{type(obj).__name__}.tenant_id cannot be changed")


# -- prebuilt Core statements, run without the ORM -------------------------------------------
#
# Session.execute takes every statement through the ORM: the hook above, then ORM compile
# state, options and result handling, which cost more than SQLite itself spends on a one-row
# write. The pipeline writes a handful of rows per lead with statements it builds once, so it
# runs them with `execute_core` on the session's connection, under the same tenant rule:
#
# - an INSERT into a tenant-owned table: every row's tenant_id is the session's tenant (the
#   check the hook applies to ORM inserts, INSERT ... FROM SELECT included);
# - an UPDATE or DELETE of a tenant-owned table: only one built by `tenant_pinned`, whose WHERE
#   says `tenant_id = :pinned_tenant_id`; the session's tenant is bound to it here, never a
#   value of the caller's;
# - any other statement that touches a tenant-owned table is refused: run it with
#   Session.execute, which scopes it.
# A system session runs them as they are (it binds :pinned_tenant_id from the parameters).

PINNED_TENANT_PARAM = "pinned_tenant_id"
_PINNED_OPTION = "leadflow_tenant_pinned"
_CORE_KINDS_MAX = 1024
_core_kinds: dict[Any, str] = {}


def tenant_pinned(statement: UpdateOrDelete) -> UpdateOrDelete:
    """An UPDATE or DELETE of a tenant-owned table, pinned by `tenant_id = :pinned_tenant_id`."""
    table = statement.table
    if not (isinstance(table, Table) and table.name in TENANT_TABLE_NAMES):
        raise TenantScopeError(f"tenant_pinned needs a tenant-owned table, not {table}")
    return statement.where(table.c.tenant_id == bindparam(PINNED_TENANT_PARAM)).execution_options(
        **{_PINNED_OPTION: True}
    )


def _core_kind(statement: Executable) -> str:
    """How execute_core scopes the statement: "free", "insert", "pinned" or "refused"."""
    kind = _core_kinds.get(statement)
    if kind is not None:
        return kind
    dml = cast(Any, statement)
    if not _tenant_tables_in(statement):
        kind = "free"
    elif getattr(dml, "is_insert", False) and dml.table.name in TENANT_TABLE_NAMES:
        kind = "insert"
    elif (getattr(dml, "is_update", False) or getattr(dml, "is_delete", False)) and (
        statement.get_execution_options().get(_PINNED_OPTION)
    ):
        kind = "pinned"
    else:
        kind = "refused"
    if len(_core_kinds) >= _CORE_KINDS_MAX:
        _core_kinds.clear()
    _core_kinds[statement] = kind
    return kind


CoreParams = dict[str, Any] | list[dict[str, Any]]


def execute_core(session: Session, statement: Executable, params: CoreParams) -> CursorResult[Any]:
    """Run a prebuilt Core statement on the session's connection and transaction (rules above)."""
    if not session.info.get(SYSTEM_KEY):
        kind = _core_kind(statement)
        if kind != "free":
            tenant_id = session.info.get(TENANT_KEY)
            if tenant_id is None:
                raise TenantScopeError("a tenant-owned table was written in a session with no tenant")
            rows = params if isinstance(params, list) else [params]
            if kind == "refused":
                raise TenantScopeError(
                    "execute_core runs INSERTs into tenant-owned tables and UPDATEs or DELETEs "
                    "built by tenant_pinned(); run this statement with Session.execute"
                )
            if kind == "insert":
                for row in rows:
                    if row.get("tenant_id", tenant_id) != tenant_id:
                        raise TenantScopeError(
                            f"insert for tenant {row.get('tenant_id')} in tenant {tenant_id}'s session"
                        )
            else:
                pinned = [{**row, PINNED_TENANT_PARAM: tenant_id} for row in rows]
                params = pinned if isinstance(params, list) else pinned[0]
    return session.connection().execute(statement, params)


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
            event.listen(factory, "do_orm_execute", _scope_orm_statement)
            event.listen(factory, "before_flush", _check_flush)

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
        from alembic import command

        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several workers and the app may start at once; one migrates, the others wait
                # (the lock is released with the transaction).
                connection.execute(text("SELECT pg_advisory_xact_lock(724002)"))
            config = alembic_config(self.settings.database_url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


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
