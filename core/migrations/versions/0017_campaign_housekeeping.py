"""Campaign housekeeping: a finished campaign can be archived

`archived_at` is set when a person archives a completed, cancelled or failed campaign: the
default lists leave it out, a filter shows it, and restoring clears it.

Revision ID: 0017_campaign_housekeeping
Revises: 0016_tenant_time_and_caps
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0017_campaign_housekeeping"
down_revision: str | Sequence[str] | None = "0016_tenant_time_and_caps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("archived_at", core.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("archived_at")
