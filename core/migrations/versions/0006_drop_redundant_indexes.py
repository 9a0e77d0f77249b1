"""Drop two indexes that newer ones make redundant: each is a prefix of another index.

ix_campaign_leads_tenant_status (tenant_id, status) is the prefix of
ix_campaign_leads_tenant_status_updated (tenant_id, status, updated_at, id), and
ix_llm_calls_tenant_created (tenant_id, created_at) the key of ix_llm_calls_tenant_created_spend.
Every insert into those hot tables paid for both.

Revision ID: 0006_drop_redundant_indexes
Revises: 0005_monitorpages
Create Date: 2026-11-21
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0006_drop_redundant_indexes"
down_revision: str | Sequence[str] | None = "0005_monitorpages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_campaign_leads_tenant_status", table_name="campaign_leads")
    op.drop_index("ix_llm_calls_tenant_created", table_name="llm_calls")


def downgrade() -> None:
    op.create_index("ix_llm_calls_tenant_created", "llm_calls", ["tenant_id", "created_at"])
    op.create_index("ix_campaign_leads_tenant_status", "campaign_leads", ["tenant_id", "status"])
