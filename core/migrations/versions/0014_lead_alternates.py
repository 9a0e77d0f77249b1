"""Lead alternates: the other phones and emails a lead's import carried

A contact exported from a CRM often has several phone and email columns (work, home, mobile).
The import keeps the best one per channel in `phone`/`email` and the rest here, best first, so
they show on the lead and can be used when the first one bounces.

Revision ID: 0014_lead_alternates
Revises: 0013_reply_rate_by_lead
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_lead_alternates"
down_revision: str | Sequence[str] | None = "0013_reply_rate_by_lead"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("alternates", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("alternates")
