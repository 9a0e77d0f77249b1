"""The tenant's monthly budget is enforced, and the model rate limit adapts to 429s.

tenant_spend holds each tenant's settled spend per UTC month (backfilled from llm_calls);
budget_reservations name their tenant, so a reservation counts against the monthly budget too,
and may be outside any campaign (the reservations of calls in flight are dropped: they would
expire within a lease anyway); rate_limits get the AIMD share of the configured rate and the
time before which it is not cut again.

Revision ID: 0011_tenant_budget
Revises: 0010_provider_failures
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_tenant_budget"
down_revision: str | Sequence[str] | None = "0010_provider_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_spend",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("spent_microusd", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_spend_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "month", name=op.f("pk_tenant_spend")),
    )
    month = (
        "strftime('%Y-%m', created_at)"
        if op.get_bind().dialect.name == "sqlite"
        else "to_char(created_at, 'YYYY-MM')"
    )
    op.execute(
        f"INSERT INTO tenant_spend (tenant_id, month, spent_microusd) "
        f"SELECT tenant_id, {month}, SUM(cost_microusd) FROM llm_calls GROUP BY tenant_id, {month}"
    )
    op.execute("DELETE FROM budget_reservations")
    with op.batch_alter_table("budget_reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant_id", sa.Integer(), nullable=False))
        batch_op.alter_column("campaign_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_budget_reservations_tenant_id_tenants"),
            "tenants",
            ["tenant_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index("ix_budget_reservations_tenant", ["tenant_id", "expires_at"], unique=False)
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_factor", sa.Float(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("cuts_held_until", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.drop_column("cuts_held_until")
        batch_op.drop_column("rate_factor")
    with op.batch_alter_table("budget_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_reservations_tenant")
        batch_op.drop_constraint(batch_op.f("fk_budget_reservations_tenant_id_tenants"), type_="foreignkey")
        batch_op.drop_column("tenant_id")
        batch_op.alter_column("campaign_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("tenant_spend")
