"""Dashboard at a million leads: finished campaigns' counts kept, first touches by day indexed.

`campaign_outcomes` holds a finished campaign's enrolments by status and messages sent, counted
once after it finished (core.campaign_editor.campaign_table), so the Campaigns list no longer
groups every enrolment of the tenant on every render. Row-level security on PostgreSQL comes
from migrate-on-start (core.rls secures every table with a tenant_id), as for every table added
after 0007. The partial index on first touches sent, by tenant and send time with the lead,
answers Reports' leads first contacted per day from the index alone.

Revision ID: 0026_dashboard_indexes
Revises: 0025_webhooks
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0026_dashboard_indexes"
down_revision: str | Sequence[str] | None = "0025_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_TOUCH_SENT = sa.text("step = 0 AND status IN ('sent', 'delivered')")


def upgrade() -> None:
    op.create_table(
        "campaign_outcomes",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("completed_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("leads_by_status", sa.JSON(), nullable=False),
        sa.Column("messages_sent", sa.Integer(), nullable=False),
        sa.Column("counted_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_outcomes_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaign_outcomes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_outcomes")),
    )
    op.create_index(
        "ix_messages_tenant_first_touch_day",
        "messages",
        ["tenant_id", "sent_at", "lead_id"],
        postgresql_where=FIRST_TOUCH_SENT,
        sqlite_where=FIRST_TOUCH_SENT,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_tenant_first_touch_day", table_name="messages")
    op.drop_table("campaign_outcomes")
