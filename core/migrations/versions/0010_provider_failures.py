"""The campaign's count of provider failures in a row, shared by every worker.

N failures in a row pause the campaign (LEADFLOW_PROVIDER_FAILURE_THRESHOLD); any success resets
the count, and so does resuming the campaign.

Revision ID: 0010_provider_failures
Revises: 0009_sender_identity
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_provider_failures"
down_revision: str | Sequence[str] | None = "0009_sender_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("consecutive_provider_failures", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("consecutive_provider_failures")
