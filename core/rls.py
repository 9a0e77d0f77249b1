"""Row-level security on PostgreSQL: the second wall behind the tenant guard in core.db.

Every table with a `tenant_id` column gets a policy that lets the role `leadflow_tenant` see
and write only the rows of the tenant named by the transaction's `leadflow.tenant_id` setting.
A tenant session's transactions start with `enter_tenant` (the setting and the role, both
local to the transaction, so a pooled connection goes back clean); system work (runner claims,
migrations, the CLI's cross-tenant commands) runs as the connecting user, as before. A query
that slips past the guard in core.db (literal SQL on the raw connection, a bug in a hook) still
sees only its tenant's rows.

Superusers and table owners bypass row-level security, which is why tenant transactions switch
to a role of their own. Other roles keep the access their grants give them (a second,
permissive policy), so a deployment whose app user is not the owner keeps working.

`secure_tenant_tables` is idempotent and cheap when nothing is missing: migrate-on-start runs it
after every upgrade, so tables added by later migrations get their policy. It needs a user that
may create roles (or a `leadflow_tenant` role made by an administrator and granted to it);
without one it logs a warning and the guard in core.db stands alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import DBAPIError

from core.logs import get_logger

log = get_logger(__name__)

TENANT_ROLE = "leadflow_tenant"
TENANT_SETTING = "leadflow.tenant_id"
TENANT_COLUMN = "tenant_id"
ISOLATION_POLICY = "leadflow_tenant_isolation"
OTHER_ROLES_POLICY = "leadflow_other_roles"
DML_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")

_DUPLICATE_OBJECT = "42710"
_UNIQUE_VIOLATION = "23505"  # two databases on one server creating the role at the same moment


def tenant_tables(tables: Iterable[Table]) -> list[Table]:
    """The tables whose rows belong to a tenant: every table with a tenant_id column, so that a
    table added later is covered without a list to keep up to date."""
    return [table for table in tables if TENANT_COLUMN in table.c]


def secure_tenant_tables(connection: Connection, tables: Iterable[Table], *, role: str = TENANT_ROLE) -> bool:
    """Make sure the role, its grants and the policies exist; False when the role is unavailable.

    `tables` are all the application's tables (the role gets DML on each); those with a tenant_id
    column get row-level security. Tables not in the database yet are left for the next run.
    """
    if not _ensure_role(connection, role):
        return False
    existing = [table for table in tables if _exists(connection, table.name)]
    _grant_schema_and_sequences(connection, role)
    for table in existing:
        _grant_dml(connection, table.name, role)
    for table in tenant_tables(existing):
        _secure(connection, table, role)
    return True


def wall_is_up(connection: Connection, *, role: str = TENANT_ROLE) -> bool:
    """Whether tenant transactions can run as the role: it exists, the user may take it, and
    this database has its policies."""
    return bool(
        connection.execute(
            text(
                "SELECT pg_has_role(current_user, r.oid, 'MEMBER') AND EXISTS ("
                "  SELECT 1 FROM pg_policies WHERE policyname = :policy"
                "  AND schemaname = current_schema()) "
                "FROM pg_roles r WHERE r.rolname = :role"
            ),
            {"role": role, "policy": ISOLATION_POLICY},
        ).scalar()
    )


def enter_tenant(connection: Connection, tenant_id: int, *, role: str = TENANT_ROLE) -> None:
    """Confine the rest of the connection's current transaction to the tenant (one round trip)."""
    connection.exec_driver_sql(
        "SELECT set_config(%(setting)s, %(tenant)s, true), set_config('role', %(role)s, true)",
        {"setting": TENANT_SETTING, "tenant": str(int(tenant_id)), "role": role},
    )


def _ensure_role(connection: Connection, role: str) -> bool:
    if not _role_exists(connection, role):
        try:
            with connection.begin_nested():
                connection.execute(text(f"CREATE ROLE {_quote(connection, role)} NOLOGIN"))
        except DBAPIError as error:
            if _sqlstate(error) not in (_DUPLICATE_OBJECT, _UNIQUE_VIOLATION):
                log.warning(
                    f"row-level security is off: the database user may not create the role {role}; "
                    f"have an administrator run CREATE ROLE {role} NOLOGIN; GRANT {role} TO <app user>;",
                    error=_first_line(error),
                )
                return False
    if not connection.execute(
        text("SELECT pg_has_role(current_user, :role, 'MEMBER')"), {"role": role}
    ).scalar():
        try:
            with connection.begin_nested():
                connection.execute(text(f"GRANT {_quote(connection, role)} TO CURRENT_USER"))
        except DBAPIError as error:
            log.warning(
                f"row-level security is off: the database user may not take the role {role}; "
                f"have an administrator run GRANT {role} TO <app user>;",
                error=_first_line(error),
            )
            return False
    return True


def _role_exists(connection: Connection, role: str) -> bool:
    found = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role})
    return found.scalar() is not None


def _exists(connection: Connection, table: str) -> bool:
    return connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar() is True


def _grant_schema_and_sequences(connection: Connection, role: str) -> None:
    quoted = _quote(connection, role)
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    if not connection.execute(
        text("SELECT has_schema_privilege(:role, :schema, 'USAGE')"), {"role": role, "schema": schema}
    ).scalar():
        connection.execute(text(f"GRANT USAGE ON SCHEMA {_quote(connection, schema)} TO {quoted}"))
    # Ids come from sequences (and the importer reserves them in advance with nextval).
    sequences = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() "
            # CASE: the planner may test the privilege before the kind, and it fails on a table.
            "AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(:role, c.oid, 'USAGE') END"
        ),
        {"role": role},
    ).scalars()
    for sequence in sequences:
        connection.execute(
            text(f"GRANT USAGE, SELECT ON SEQUENCE {_quote(connection, sequence)} TO {quoted}")
        )


def _grant_dml(connection: Connection, table: str, role: str) -> None:
    missing = [
        privilege
        for privilege in DML_PRIVILEGES
        if not connection.execute(
            text("SELECT has_table_privilege(:role, to_regclass(:t), :privilege)"),
            {"role": role, "t": table, "privilege": privilege},
        ).scalar()
    ]
    if missing:
        connection.execute(
            text(f"GRANT {', '.join(missing)} ON {_quote(connection, table)} TO {_quote(connection, role)}")
        )


def _secure(connection: Connection, table: Table, role: str) -> None:
    # Each statement below locks the table; run them only for what is missing, so that a worker
    # starting next to running ones does not queue behind their queries on every start.
    name = _quote(connection, table.name)
    enabled = connection.execute(
        text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table.name}
    ).scalar()
    if not enabled:
        connection.execute(text(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY"))
    policies = set(
        connection.execute(
            text("SELECT policyname FROM pg_policies WHERE schemaname = current_schema() AND tablename = :t"),
            {"t": table.name},
        ).scalars()
    )
    quoted_role = _quote(connection, role)
    if ISOLATION_POLICY not in policies:
        column_type = table.c[TENANT_COLUMN].type.compile(dialect=connection.dialect)
        # NULLIF: a setting that was set once in this connection reads '' outside its transaction.
        own_tenant = f"{TENANT_COLUMN} = NULLIF(current_setting('{TENANT_SETTING}', true), '')::{column_type}"
        connection.execute(
            text(
                f"CREATE POLICY {ISOLATION_POLICY} ON {name} FOR ALL TO {quoted_role} "
                f"USING ({own_tenant}) WITH CHECK ({own_tenant})"
            )
        )
    if OTHER_ROLES_POLICY not in policies:
        others = f"current_user <> '{role}'"
        connection.execute(
            text(
                f"CREATE POLICY {OTHER_ROLES_POLICY} ON {name} FOR ALL TO PUBLIC "
                f"USING ({others}) WITH CHECK ({others})"
            )
        )


def remove_row_security(connection: Connection, tables: list[Table], *, role: str = TENANT_ROLE) -> None:
    """Undo `secure_tenant_tables` in this database (the role stays: other databases may use it)."""
    role_exists = _role_exists(connection, role)
    tenant_owned = {table.name for table in tenant_tables(tables)}
    for table in tables:
        if not _exists(connection, table.name):
            continue
        name = _quote(connection, table.name)
        if table.name in tenant_owned:
            for policy in (ISOLATION_POLICY, OTHER_ROLES_POLICY):
                connection.execute(text(f"DROP POLICY IF EXISTS {policy} ON {name}"))
            connection.execute(text(f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY"))
        if role_exists:
            connection.execute(text(f"REVOKE ALL ON {name} FROM {_quote(connection, role)}"))


def _quote(connection: Connection, identifier: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(identifier)


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def _first_line(error: DBAPIError) -> str:
    return str(error.orig).splitlines()[0] if error.orig is not None else str(error)
