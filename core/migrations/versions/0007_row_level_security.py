"""Row-level security on every tenant-owned table (PostgreSQL): the second wall of tenant isolation.

A NOLOGIN role `leadflow_tenant` gets DML on the tables, and on every table with a tenant_id
column a policy confines it to the tenant of the transaction's `leadflow.tenant_id` setting;
tenant sessions switch to it per transaction (core.db, core.rls). The tables are read from the
database as it is at this revision; migrate-on-start runs the same setup again after every
upgrade, so tables added by later revisions are covered too. SQLite has no row-level security:
nothing to do there.

Revision ID: 0007_row_level_security
Revises: 0006_drop_redundant_indexes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core import rls

revision: str = "0007_row_level_security"
down_revision: str | Sequence[str] | None = "0006_drop_redundant_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tables() -> list[sa.Table]:
    reflected = sa.MetaData()
    reflected.reflect(bind=op.get_bind())
    return [table for table in reflected.sorted_tables if table.name != "alembic_version"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        rls.secure_tenant_tables(op.get_bind(), _tables())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        rls.remove_row_security(op.get_bind(), _tables())
