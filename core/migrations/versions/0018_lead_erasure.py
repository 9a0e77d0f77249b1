"""Lead erasure: a lead's sent messages and model calls outlive it, detached and anonymised

An erasure request (GDPR art. 17) deletes the lead, its tags and its enrolments. The send ledger
and the model calls stay for the cost and ledger figures, so their links to the lead and the
enrolment become nullable and are set to NULL when those go (they were ON DELETE CASCADE).

Revision ID: 0018_lead_erasure
Revises: 0017_campaign_housekeeping
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_lead_erasure"
down_revision: str | Sequence[str] | None = "0017_campaign_housekeeping"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_TOUCH_SENT = sa.text("step = 0 AND status IN ('sent', 'delivered')")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (table, column, referred table): the links that an erased lead leaves empty.
LINKS = (
    ("messages", "lead_id", "leads"),
    ("messages", "campaign_lead_id", "campaign_leads"),
    ("llm_calls", "campaign_lead_id", "campaign_leads"),
)


def _relink(on_delete: str, nullable: bool) -> None:
    for table, column, referred in LINKS:
        name = f"fk_{table}_{column}_{referred}"
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")
            if table == "messages":  # llm_calls.campaign_lead_id was nullable already
                batch.alter_column(column, existing_type=BIG_ID, nullable=nullable)
            batch.create_foreign_key(name, referred, [column], ["id"], ondelete=on_delete)


def upgrade() -> None:
    _relink("SET NULL", nullable=True)


def downgrade() -> None:
    # Messages of erased leads cannot point at a lead again: they go, as a cascade would have taken them.
    op.execute("DELETE FROM messages WHERE lead_id IS NULL OR campaign_lead_id IS NULL")
    _relink("CASCADE", nullable=False)
