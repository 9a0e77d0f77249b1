"""Usernames unique per tenant, not across all tenants

Two organisations may each have an `olivia`. The unique constraint on users.username becomes one
on (username, tenant_id): username first, so that the sign-in, which looks a username up before
it knows the tenant (as the connecting user, outside row-level security), still finds it through
the index.

SQLite changes a constraint by copying the table, and dropping the old `users` with foreign keys
on (they cannot be switched off inside the migration's transaction) would fire the ON DELETE
actions of every table that points at it: the audit log would lose who did what and every
sign-in would end. What those tables hold about users is kept aside and put back.

Revision ID: 0015_usernames_per_tenant
Revises: 0014_lead_alternates
Create Date: 2026-12-01
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0015_usernames_per_tenant"
down_revision: str | Sequence[str] | None = "0014_lead_alternates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


@contextmanager
def _user_references_kept() -> Iterator[None]:
    """On SQLite, restore what the copy of `users` deletes or nulls in the tables referring to it."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    inspector = sa.inspect(bind)
    references = [
        (table, fk["constrained_columns"][0], (fk.get("options") or {}).get("ondelete", "").upper())
        for table in inspector.get_table_names()
        for fk in inspector.get_foreign_keys(table)
        if fk["referred_table"] == "users"
    ]
    for number, (table, column, on_delete) in enumerate(references):
        kept = "*" if on_delete == "CASCADE" else f'id, "{column}"'
        bind.exec_driver_sql(
            f'CREATE TEMP TABLE _kept_{number} AS SELECT {kept} FROM "{table}" WHERE "{column}" IS NOT NULL'
        )
    yield
    for number, (table, column, on_delete) in enumerate(references):
        if on_delete == "CASCADE":
            bind.exec_driver_sql(
                f'INSERT INTO "{table}" SELECT * FROM _kept_{number} '
                f'WHERE id NOT IN (SELECT id FROM "{table}")'
            )
        else:
            bind.exec_driver_sql(
                f'UPDATE "{table}" SET "{column}" = k."{column}" FROM _kept_{number} AS k '
                f'WHERE k.id = "{table}".id'
            )
        bind.exec_driver_sql(f"DROP TABLE _kept_{number}")


def upgrade() -> None:
    with _user_references_kept(), op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_username", type_="unique")
        batch.create_unique_constraint("uq_users_username_tenant_id", ["username", "tenant_id"])


def downgrade() -> None:
    # Refused by the database while one username is used in two tenants: rename one first.
    with _user_references_kept(), op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_username_tenant_id", type_="unique")
        batch.create_unique_constraint("uq_users_username", ["username"])
