"""Engine and session factory, SQLite pragmas, tenant scoping, and migrate-on-start.

Tenant isolation lives here and only here: every session is opened either for one tenant
(`Database.session(tenant_id=...)`) or explicitly as a system session (`system=True`, for the
job runner, the login and the CLI's cross-tenant commands). In a tenant session every ORM
SELECT, UPDATE and DELETE that touches a tenant-owned table gets `tenant_id = :tenant` added by
`with_loader_criteria`, every INSERT must write the session's tenant and no UPDATE may set
`tenant_id`, and every new or changed row is checked before it is flushed. SQL the guard cannot
read (text(), literal columns, table() clauses, prefixes and suffixes) is refused there. A
session with neither refuses to touch tenant-owned tables at all, so a forgotten scope is an
error, not a leak. Prebuilt Core statements on a hot path run with `execute_core`, under the
same rule (see there).

On PostgreSQL a second wall stands behind this one (core.rls): each tenant transaction runs as a
role that row-level security policies confine to the tenant's rows.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Column,
    Delete,
    Engine,
    Executable,
    Insert,
    Select,
    Table,
    TextClause,
    Update,
    bindparam,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql.dml import OnConflictDoUpdate as PostgresqlUpsert
from sqlalchemy.dialects.sqlite.dml import OnConflictDoUpdate as SqliteUpsert
from sqlalchemy.engine import URL, Connection, CursorResult, make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnClause, Label
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.sql.selectable import AliasedReturnsRows, Join, TableClause

from core import rls
from core.config import ROOT, Settings
from core.logs import get_logger
from core.models import TENANT_TABLE_NAMES, Base, TenantOwned

log = get_logger(__name__)

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


def _scope_orm_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria added to the parent statement already apply
    info = state.session.info
    if info.get(SYSTEM_KEY):
        return
    tenant_id = info.get(TENANT_KEY)
    statement = state.statement
    _refuse_unreadable(statement)
    rows = _parameter_rows(state.parameters)
    if state.is_insert:
        _check_insert(cast(Insert, statement), rows, tenant_id)
    elif state.is_update:
        _check_update(cast(Update, statement), rows)
    scoped_entity = any(issubclass(mapper.class_, TenantOwned) for mapper in state.all_mappers)
    if not scoped_entity:
        if _tenant_tables_in(statement):
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
        if cast(Insert, statement).select is not None:
            # The loader criteria do not reach the SELECT of an INSERT ... FROM SELECT.
            state.statement = _pinned_reads(statement, tenant_id)
        return
    if state.is_update and state.is_executemany:
        # ORM bulk UPDATE by primary key (a list of parameter dicts) does not apply loader
        # criteria; the tenant goes into its WHERE clause instead, next to each row's key.
        # SQLAlchemy cannot synchronise loaded objects with that WHERE, so it is switched off:
        # objects already loaded in this session keep their old values until refreshed.
        mapper = next(m for m in state.all_mappers if issubclass(m.class_, TenantOwned))
        state.statement = (
            cast(Update, statement)
            .where(mapper.class_.tenant_id == tenant_id)
            .execution_options(synchronize_session=None)
        )
        return
    if state.is_select or state.is_update or state.is_delete:
        if _reads_core_tenant_columns(statement):
            # Loader criteria reach mapped entities only; a Core table's columns in a subquery
            # would read every tenant's rows.
            statement = _pinned_reads(statement, tenant_id)
        state.statement = _scoped_statement(statement, tenant_id)


def _parameter_rows(params: Any) -> list[dict[str, Any]]:
    if isinstance(params, list):
        return params
    return [dict(params)] if params else []


# Statements a service keeps and runs again and again (the pipeline's per-lead UPDATEs) get
# their tenant criteria once per tenant: adding the option builds a new statement, whose SQL
# cache key and lambda criteria SQLAlchemy must then work out again on every execution.
# Statements are immutable, so the scoped one can be shared; the cache is bounded, and a
# statement built afresh for each call simply never hits it.
_SCOPED_STATEMENTS_MAX = 1024
_scoped_statements: dict[tuple[Any, int], Any] = {}
_pinned_statements: dict[tuple[Any, int], Any] = {}


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
        _remember(_scoped_statements, key, scoped)
    return scoped


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _SCOPED_STATEMENTS_MAX:
        cache.clear()
    cache[key] = value


def _is_tenant_table_name(name: str) -> bool:
    # SQLite matches table names without regard to case, quoted or not.
    return name.lower() in TENANT_TABLE_NAMES


def _tenant_tables_in(statement: Any) -> bool:
    return any(
        isinstance(element, Table) and _is_tenant_table_name(element.name)
        for element in visitors.iterate(statement)
    )


# -- SQL the guard cannot read ---------------------------------------------------------------
#
# The guard reasons about tables and columns; literal SQL can name any table in any spelling
# (quoted, upper case, through a view or a function), so in a tenant session it is refused
# wherever it sits in a statement: text(), literal_column(), prefixes, suffixes and hints, a
# custom operator that is more than an operator, and a lightweight table() clause standing in
# for a tenant-owned table. Core code that needs literal SQL touching no table (a session
# setting, an advisory lock) marks it with `trusted_sql`.

_TRUSTED_SQL = "leadflow_trusted_sql"
_HARMLESS_LITERALS = frozenset({"*"})  # count(*) and EXISTS (SELECT * ...) are built with one
_PLAIN_OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|?]{1,3}")
_statement_findings: dict[Any, tuple[str | None, bool]] = {}


def trusted_sql(sql: str) -> TextClause:
    """Literal SQL that core code vouches for, so that it may run in a tenant session.

    Only for SQL that reads and writes no table (a session setting, an advisory lock): the guard
    cannot see what literal SQL touches, and refuses any other in a tenant session.
    """
    return cast(TextClause, text(sql)._annotate({_TRUSTED_SQL: True}))


def _unreadable_part(statement: Any) -> str | None:
    return _findings(statement)[0]


def _reads_core_tenant_columns(statement: Any) -> bool:
    return _findings(statement)[1]


def _findings(statement: Any) -> tuple[str | None, bool]:
    """What a walk over the statement finds: SQL the guard cannot read (or None), and whether it
    reads a tenant-owned table's columns through Core (not through a mapped entity)."""
    found = _statement_findings.get(statement)
    if found is None:
        unreadable: str | None = None
        core_columns = False
        for element in visitors.iterate(statement):
            unreadable = _unreadable_element(element)
            if unreadable is not None:
                break
            core_columns = core_columns or _is_core_tenant_column(element)
        if isinstance(statement, (Update, Delete)):
            # An UPDATE's SET targets are plain columns that read nothing: look at what it reads.
            core_columns = any(
                _is_core_tenant_column(element)
                for part in _read_parts(statement)
                for element in visitors.iterate(part)
            )
        found = (unreadable, core_columns and unreadable is None and not _already_scoped(statement))
        _remember(_statement_findings, statement, found)
    return found


def _is_core_tenant_column(element: Any) -> bool:
    # Columns reached through a mapped entity are annotated copies; a plain Column is Core's.
    return (
        type(element) is Column
        and isinstance(element.table, Table)
        and _is_tenant_table_name(element.table.name)
    )


def _read_parts(statement: Update | Delete) -> list[Any]:
    values = (statement._values or {}).values() if isinstance(statement, Update) else ()
    return [*statement._where_criteria, *values]


def _already_scoped(statement: Any) -> bool:
    # A statement that carries loader criteria is one the ORM derived from a statement this
    # module has scoped and pinned already (the SELECT of synchronize_session="fetch"); such
    # options cannot be cloned, and need not be.
    return any(isinstance(option, LoaderCriteriaOption) for option in getattr(statement, "_with_options", ()))


def _unreadable_element(element: Any) -> str | None:
    if isinstance(element, TextClause):
        return None if element._annotations.get(_TRUSTED_SQL) else "literal SQL (text())"
    if isinstance(element, ColumnClause) and element.is_literal:
        return None if element.name in _HARMLESS_LITERALS else "a literal_column()"
    if isinstance(element, TableClause) and not isinstance(element, Table):
        return f"a table() clause for {element.name}" if _is_tenant_table_name(element.name) else None
    if isinstance(element, BinaryExpression) and isinstance(element.operator, custom_op):
        operator = element.operator.opstring
        return None if _PLAIN_OPERATOR.fullmatch(operator) else f"the custom operator {operator!r}"
    for attribute in ("_prefixes", "_suffixes", "_hints", "_statement_hints"):
        if getattr(element, attribute, None):
            return "a prefix, suffix or hint"
    return None


def _refuse_unreadable(statement: Any) -> None:
    part = _unreadable_part(statement)
    if part is not None:
        raise TenantScopeError(
            f"a tenant session cannot read {part}: the guard cannot tell which tenant's rows it "
            "touches; build the statement from the models, or run it in a system session"
        )


# -- writes that carry or set another tenant's id --------------------------------------------

_NOT_A_VALUE = object()


def _column_key(key: Any) -> Any:
    return key if isinstance(key, str) else getattr(key, "key", None)


def _inserted_tenant_ids(statement: Insert, rows: list[dict[str, Any]]) -> Iterator[Any]:
    """Every tenant_id the INSERT would write; `_NOT_A_VALUE` for an SQL expression."""
    for key, value in (statement._values or {}).items():
        if _column_key(key) == TENANT_KEY:
            yield from _bound_values(value, rows)
    position = list(statement.table.c.keys()).index(TENANT_KEY)
    for many in statement._multi_values:
        for row in many:
            if isinstance(row, dict):
                for key, value in row.items():
                    if _column_key(key) == TENANT_KEY:
                        yield from _bound_values(value, rows)
            elif len(row) > position:
                yield from _bound_values(row[position], rows)
    if statement.select is not None:
        names = [_column_key(name) for name in statement._select_names or ()]
        if TENANT_KEY in names:
            selected = list(statement.select.selected_columns)[names.index(TENANT_KEY)]
            yield from _bound_values(selected, rows)
    for params in rows:
        if TENANT_KEY in params:
            yield params[TENANT_KEY]


def _bound_values(value: Any, rows: list[dict[str, Any]]) -> Iterator[Any]:
    if isinstance(value, Label):
        value = value.element
    if isinstance(value, BindParameter):
        if value.callable is not None:
            yield _NOT_A_VALUE
        elif not rows:
            yield value.value
        else:
            # A parameter the execution supplies takes the place of the statement's own value.
            for row in rows:
                yield row.get(value.key, value.value)
    elif hasattr(value, "__clause_element__") or isinstance(value, visitors.Visitable):
        yield _NOT_A_VALUE
    else:
        yield value


def _check_insert(statement: Insert, rows: list[dict[str, Any]], tenant_id: int | None) -> None:
    table = statement.table
    if not (isinstance(table, TableClause) and _is_tenant_table_name(table.name)):
        return
    if tenant_id is None:
        raise TenantScopeError("a tenant-owned row was written in a session with no tenant")
    if isinstance(statement._post_values_clause, (PostgresqlUpsert, SqliteUpsert)):
        raise TenantScopeError(
            "INSERT ... ON CONFLICT DO UPDATE can change a row of another tenant that holds the same "
            "key; it is refused in a tenant session (look the row up, then update it)"
        )
    for value in _inserted_tenant_ids(statement, rows):
        if value is _NOT_A_VALUE:
            raise TenantScopeError(
                "in a tenant session an INSERT's tenant_id must be a plain value, not an SQL expression"
            )
        if type(value) is not int or value != tenant_id:
            raise TenantScopeError(
                f"insert for tenant {value!r} in tenant {tenant_id}'s session: "
                "an INSERT's tenant_id must be the session's tenant"
            )


def _check_update(statement: Update, rows: list[dict[str, Any]]) -> None:
    table = statement.table
    if not (isinstance(table, TableClause) and _is_tenant_table_name(table.name)):
        return
    ordered = getattr(statement, "_ordered_values", None) or ()
    keys = [_column_key(key) for key in (*(statement._values or {}), *(k for k, _ in ordered))]
    supplied = any(TENANT_KEY in row for row in rows)
    if TENANT_KEY in keys or (supplied and TENANT_KEY not in _bind_keys(statement)):
        # A parameter named after a column that no bind parameter takes becomes a SET clause.
        raise TenantScopeError("an UPDATE in a tenant session cannot set tenant_id")


def _bind_keys(statement: Any) -> set[str]:
    return {e.key for e in visitors.iterate(statement) if isinstance(e, BindParameter)}


def _pinned_reads(statement: Any, tenant_id: int) -> Any:
    """The statement with every tenant-owned table its SELECTs read pinned to the tenant."""
    key = (statement, tenant_id)
    pinned = _pinned_statements.get(key)
    if pinned is None:

        def pin(select: Select[Any]) -> None:
            # cloned_traverse hands over a private copy: extending its WHERE is what .where() does.
            for from_ in select.get_final_froms():
                for table in _tenant_froms(from_):
                    select._where_criteria += (table.c.tenant_id == tenant_id,)

        pinned = visitors.cloned_traverse(statement, {}, {"select": pin})
        _remember(_pinned_statements, key, pinned)
    return pinned


def _tenant_froms(from_: Any) -> Iterator[Any]:
    if isinstance(from_, Join):
        yield from _tenant_froms(from_.left)
        yield from _tenant_froms(from_.right)
    elif isinstance(from_, Table) and _is_tenant_table_name(from_.name):
        yield from_
    elif isinstance(from_, AliasedReturnsRows) and isinstance(from_.element, Table):
        if _is_tenant_table_name(from_.element.name):
            yield from_


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
#   check the hook applies to ORM inserts, INSERT ... FROM SELECT included, whose SELECT reads
#   only the tenant's rows: each tenant-owned table it reads is pinned to the tenant), and no
#   ON CONFLICT DO UPDATE;
# - an UPDATE or DELETE of a tenant-owned table: only one built by `tenant_pinned`, whose WHERE
#   says `tenant_id = :pinned_tenant_id`; the session's tenant is bound to it here, never a
#   value of the caller's, and it may not set tenant_id;
# - any other statement that touches a tenant-owned table, and any SQL the guard cannot read,
#   is refused: run it with Session.execute, which scopes it.
# A system session runs them as they are (it binds :pinned_tenant_id from the parameters).

PINNED_TENANT_PARAM = "pinned_tenant_id"
_PINNED_OPTION = "leadflow_tenant_pinned"
_core_kinds: dict[Any, tuple[str, str | None]] = {}


def tenant_pinned(statement: UpdateOrDelete) -> UpdateOrDelete:
    """An UPDATE or DELETE of a tenant-owned table, pinned by `tenant_id = :pinned_tenant_id`."""
    table = statement.table
    if not (isinstance(table, Table) and _is_tenant_table_name(table.name)):
        raise TenantScopeError(f"tenant_pinned needs a tenant-owned table, not {table}")
    return statement.where(table.c.tenant_id == bindparam(PINNED_TENANT_PARAM)).execution_options(
        **{_PINNED_OPTION: True}
    )


def _core_kind(statement: Executable) -> tuple[str, str | None]:
    """How execute_core scopes the statement: "free", "insert", "pinned" or "refused" (and why)."""
    kind = _core_kinds.get(statement)
    if kind is not None:
        return kind
    dml = cast(Any, statement)
    unreadable = _unreadable_part(statement)
    if unreadable is not None:
        kind = ("refused", f"a tenant session cannot read {unreadable}")
    elif not _tenant_tables_in(statement):
        kind = ("free", None)
    elif getattr(dml, "is_insert", False) and _is_tenant_table_name(dml.table.name):
        kind = ("insert", None)
    elif (getattr(dml, "is_update", False) or getattr(dml, "is_delete", False)) and (
        statement.get_execution_options().get(_PINNED_OPTION)
    ):
        kind = ("pinned", None)
    else:
        kind = (
            "refused",
            "execute_core runs INSERTs into tenant-owned tables and UPDATEs or DELETEs "
            "built by tenant_pinned(); run this statement with Session.execute",
        )
    _remember(_core_kinds, statement, kind)
    return kind


CoreParams = dict[str, Any] | list[dict[str, Any]]


def execute_core(session: Session, statement: Executable, params: CoreParams) -> CursorResult[Any]:
    """Run a prebuilt Core statement on the session's connection and transaction (rules above)."""
    if not session.info.get(SYSTEM_KEY):
        kind, refusal = _core_kind(statement)
        if kind != "free":
            tenant_id = session.info.get(TENANT_KEY)
            if tenant_id is None:
                raise TenantScopeError("a tenant-owned table was written in a session with no tenant")
            if refusal is not None:
                raise TenantScopeError(refusal)
            rows = params if isinstance(params, list) else [params]
            if kind == "insert":
                insert = cast(Insert, statement)
                _check_insert(insert, rows, tenant_id)
                if insert.select is not None:
                    statement = _pinned_reads(insert, tenant_id)
            else:
                if cast(Any, statement).is_update:
                    _check_update(cast(Update, statement), rows)
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
        raise RuntimeError(f"the migration would leave {len(broken)} rows with broken references: "
                           + ", ".join(sorted({str(row[0]) for row in broken})))


MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^(down_)?revision\b[^=\n]*=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(['"])([^'"]+)\1$""")


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
