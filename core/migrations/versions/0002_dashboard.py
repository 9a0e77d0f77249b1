"""dashboard: covering indexes for the Costs and Reports aggregates

On PostgreSQL the INCLUDE columns make the funnel, unit-cost and spend aggregates index-only
scans; SQLite ignores INCLUDE and gets the key columns. The opted-out index is partial: it holds
only the few leads that opted out; ix_campaign_leads_lead gains INCLUDE columns so their
enrolments are counted without reading the table.

Revision ID: 0002_dashboard
Revises: 0001
Create Date: 2026-11-20
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002_dashboard"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OPTED_OUT = sa.text("opted_out_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_campaign_leads_lead", table_name="campaign_leads")
    op.create_index("ix_campaign_leads_lead", "campaign_leads", ["lead_id"],
                    postgresql_include=["tenant_id", "campaign_id", "created_at"])
    op.create_index("ix_campaign_leads_tenant_campaign_variant", "campaign_leads",
                    ["tenant_id", "campaign_id", "variant"],
                    postgresql_include=["id", "lead_id", "replied_at", "cost_microusd", "created_at"])
    op.create_index("ix_leads_tenant_opted_out_ids", "leads", ["tenant_id", "id"],
                    postgresql_include=["opted_out_at"], postgresql_where=OPTED_OUT,
                    sqlite_where=OPTED_OUT)
    op.create_index("ix_llm_calls_tenant_created_spend", "llm_calls", ["tenant_id", "created_at"],
                    postgresql_include=["campaign_id", "model", "node", "input_tokens",
                                        "output_tokens", "cost_microusd"])
    op.create_index("ix_messages_tenant_campaign_step_status", "messages",
                    ["tenant_id", "campaign_id", "step", "status"],
                    postgresql_include=["campaign_lead_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_tenant_campaign_step_status", table_name="messages")
    op.drop_index("ix_llm_calls_tenant_created_spend", table_name="llm_calls")
    op.drop_index("ix_leads_tenant_opted_out_ids", table_name="leads")
    op.drop_index("ix_campaign_leads_tenant_campaign_variant", table_name="campaign_leads")
    op.drop_index("ix_campaign_leads_lead", table_name="campaign_leads")
    op.create_index("ix_campaign_leads_lead", "campaign_leads", ["lead_id"])
