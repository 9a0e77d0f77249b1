"""Reply agent: which reply classes stop a campaign's sequence

Each campaign chooses the classes of reply (core.inbound.classify) that end its sequence for the
lead who sent one; existing campaigns get the default, every human answer but an absence.

Revision ID: 0023_reply_agent
Revises: 0022_inbound
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_reply_agent"
down_revision: str | Sequence[str] | None = "0022_inbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As core.models.DEFAULT_REPLY_STOP_CLASSES was when this migration was written.
DEFAULT_STOP_CLASSES = ["interested", "question", "not_now", "not_interested", "referral",
                        "wrong_person", "unclassified"]


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("reply_stop_classes", sa.JSON(), nullable=False,
                                   server_default=json.dumps(DEFAULT_STOP_CLASSES)))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("reply_stop_classes")
