"""Lead search that ignores case and accents and finds phones as typed: `leads.search_text`.

The column holds the lead's name, email, company and phone digits folded in Python
(core.leads.search), so SQLite and PostgreSQL match alike without the unaccent extension.
Existing leads are back-filled in batches. On PostgreSQL a trigram index (pg_trgm) answers
"contains" searches; where the extension cannot be installed a prefix index stands in. On
SQLite a plain index lets a search scan the narrow column instead of the rows.

Revision ID: 0012_lead_search
Revises: 0011_tenant_budget
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.leads.search import SEARCHED_FIELDS, lead_search_text

revision: str = "0012_lead_search"
down_revision: str | Sequence[str] | None = "0011_tenant_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000
INDEX = "ix_leads_search_text"


def _backfill(connection: sa.Connection) -> None:
    leads = sa.table(
        "leads",
        sa.column("id", sa.BigInteger),
        sa.column("search_text", sa.Text),
        *(sa.column(name, sa.String) for name in SEARCHED_FIELDS),
    )
    update = (
        sa.update(leads)
        .where(leads.c.id == sa.bindparam("lead_id"))
        .values(search_text=sa.bindparam("folded"))
    )
    last_id = 0
    while True:
        # Keyset batches: memory stays flat and each statement stays short on a large table.
        rows = connection.execute(
            sa.select(leads.c.id, *(leads.c[name] for name in SEARCHED_FIELDS))
            .where(leads.c.id > last_id)
            .order_by(leads.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            update, [{"lead_id": r.id, "folded": lead_search_text(dict(r._mapping))} for r in rows]
        )
        last_id = rows[-1].id


def _trigrams_available(connection: sa.Connection) -> bool:
    """Install pg_trgm when the role may; a failure is rolled back to a savepoint, not fatal."""
    installed = connection.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if installed:
        return True
    try:
        with connection.begin_nested():
            connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    connection = op.get_bind()
    _backfill(connection)
    if connection.dialect.name != "postgresql":
        op.create_index(INDEX, "leads", ["search_text"])
    elif _trigrams_available(connection):
        op.create_index(
            INDEX,
            "leads",
            ["search_text"],
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
    else:
        op.create_index(INDEX, "leads", ["search_text"], postgresql_ops={"search_text": "text_pattern_ops"})


def downgrade() -> None:
    op.drop_index(INDEX, table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("search_text")
