"""monitorpages: indexes for the review queue and the Overview's reply rate

The review queue pages through a tenant's drafts awaiting approval oldest first and counts
them: (tenant_id, status, updated_at, id) serves both without a sort or a table read. The
reply rate counts the enrolments that got a reply and the first touches that went out; both
partial indexes hold only those rows, so on PostgreSQL each count is an index-only scan
instead of a scan of campaign_leads or messages.

Revision ID: 0005_monitorpages
Revises: 0004_runner
Create Date: 2026-11-20
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_monitorpages"
down_revision: str | Sequence[str] | None = "0004_runner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLIED = sa.text("replied_at IS NOT NULL")
FIRST_TOUCH_SENT = sa.text("step = 0 AND status IN ('sent', 'delivered')")


def upgrade() -> None:
    op.create_index("ix_campaign_leads_tenant_status_updated", "campaign_leads",
                    ["tenant_id", "status", "updated_at", "id"])
    op.create_index("ix_campaign_leads_tenant_replied", "campaign_leads", ["tenant_id", "id"],
                    postgresql_where=REPLIED, sqlite_where=REPLIED)
    op.create_index("ix_messages_tenant_first_touch_sent", "messages", ["tenant_id", "id"],
                    postgresql_where=FIRST_TOUCH_SENT, sqlite_where=FIRST_TOUCH_SENT)


def downgrade() -> None:
    op.drop_index("ix_messages_tenant_first_touch_sent", table_name="messages")
    op.drop_index("ix_campaign_leads_tenant_replied", table_name="campaign_leads")
    op.drop_index("ix_campaign_leads_tenant_status_updated", table_name="campaign_leads")
