"""Import warnings: what an import changed or left out in the rows it kept

A row with a usable email and a junk phone (or the other way round) is imported without the
junk, and a phone whose country cannot be told is left empty: the import's record keeps those
per-row warnings beside its rejects, so both can be listed and downloaded later.

Revision ID: 0020_import_warnings
Revises: 0018_lead_erasure
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_import_warnings"
down_revision: str | Sequence[str] | None = "0018_lead_erasure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lead_imports") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("lead_imports") as batch:
        batch.drop_column("warnings")
