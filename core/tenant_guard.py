"""The tenant guard: the rule every session of core.db enforces on the SQL it runs.

Every session is opened either for one tenant or explicitly as a system session (core.db). In a
tenant session every ORM SELECT, UPDATE and DELETE that touches a tenant-owned table gets
`tenant_id = :tenant` added by `with_loader_criteria`, every INSERT must write the session's
tenant and no UPDATE may set `tenant_id`, and every new or changed row is checked before it is
flushed. SQL the guard cannot read (text(), literal columns, table() clauses, prefixes and
suffixes) is refused there. A session with neither refuses to touch tenant-owned tables at all,
so a forgotten scope is an error, not a leak. Prebuilt Core statements on a hot path run with
`execute_core`, under the same rule (see there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Column,
    Delete,
    Executable,
    Insert,
    Select,
    Table,
    TextClause,
    Update,
    bindparam,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql.dml import OnConflictDoUpdate as PostgresqlUpsert
from sqlalchemy.dialects.sqlite.dml import OnConflictDoUpdate as SqliteUpsert
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnClause, Label
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.sql.selectable import AliasedReturnsRows, Join, TableClause

from core.models import TENANT_TABLE_NAMES, TenantOwned

TENANT_KEY = "tenant_id"
SYSTEM_KEY = "system"

UpdateOrDelete = TypeVar("UpdateOrDelete", Update, Delete)


class TenantScopeError(RuntimeError):
    """A query or write crossed, or forgot, its tenant scope."""


def scope_orm_statement(state: ORMExecuteState) -> None:
    """The `do_orm_execute` hook: scope, check or refuse the statement (module docstring)."""
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


def check_flush(session: Session, _context: object, _instances: object) -> None:
    """The `before_flush` hook: every new, changed or deleted tenant-owned row is the tenant's."""
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
