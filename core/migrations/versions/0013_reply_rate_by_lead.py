"""Reply rate by lead: the Overview's reply rate counts distinct leads, index-only

The reply rate now counts leads, not enrolments (a lead in three campaigns that replied once is
one reply from one lead contacted). Its two partial indexes held (tenant_id, id), which counts
rows; holding (tenant_id, lead_id) lets PostgreSQL count the distinct leads from the index alone.

Revision ID: 0013_reply_rate_by_lead
Revises: 0012_lead_search
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_reply_rate_by_lead"
down_revision: str | Sequence[str] | None = "0012_lead_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLIED = sa.text("replied_at IS NOT NULL")
FIRST_TOUCH_SENT = sa.text("step = 0 AND status IN ('sent', 'delivered')")


def _replace(key: str) -> None:
    op.drop_index("ix_messages_tenant_first_touch_sent", table_name="messages")
    op.create_index(
        "ix_messages_tenant_first_touch_sent",
        "messages",
        ["tenant_id", key],
        postgresql_where=FIRST_TOUCH_SENT,
        sqlite_where=FIRST_TOUCH_SENT,
    )
    op.drop_index("ix_campaign_leads_tenant_replied", table_name="campaign_leads")
    op.create_index(
        "ix_campaign_leads_tenant_replied",
        "campaign_leads",
        ["tenant_id", key],
        postgresql_where=REPLIED,
        sqlite_where=REPLIED,
    )


def upgrade() -> None:
    _replace("lead_id")


def downgrade() -> None:
    _replace("id")
