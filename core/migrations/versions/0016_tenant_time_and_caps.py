"""Tenant time and send rules: its time zone, contact caps per lead, public holidays

A tenant gets its own clock (an IANA zone; none: its country's main zone) for schedules and the
times the dashboard shows; caps on how many messages one lead gets per rolling day and week
across all campaigns (none: no cap), counted on the ledger by lead and time; and whether sends
wait out public holidays, in which country's calendar (none: the recipient's).

Revision ID: 0016_tenant_time_and_caps
Revises: 0015_usernames_per_tenant
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_tenant_time_and_caps"
down_revision: str | Sequence[str] | None = "0015_usernames_per_tenant"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("contact_cap_per_day", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("contact_cap_per_week", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("skip_public_holidays", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("holiday_country", sa.String(length=2), nullable=True))
    op.create_index("ix_messages_lead_created", "messages", ["lead_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_lead_created", table_name="messages")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("holiday_country")
        batch.drop_column("skip_public_holidays")
        batch.drop_column("contact_cap_per_week")
        batch.drop_column("contact_cap_per_day")
        batch.drop_column("time_zone")
