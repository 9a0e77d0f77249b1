"""runner: rate limits, budget reservations, campaign spend, claim indexes

Revision ID: 0004_runner
Revises: 0003_pipeline
Create Date: 2026-11-20
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = '0004_runner'
down_revision: str | Sequence[str] | None = '0003_pipeline'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rate_limits',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('next_free_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limits'))
    )
    op.create_table('budget_reservations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('amount_microusd', sa.BigInteger(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('expires_at', core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_budget_reservations_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_reservations'))
    )
    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_budget_reservations_campaign', ['campaign_id', 'expires_at'], unique=False)

    with op.batch_alter_table('campaign_leads', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_leads_campaign_due', ['campaign_id', 'status', 'next_action_at'], unique=False)
        batch_op.create_index('ix_campaign_leads_campaign_updated', ['campaign_id', 'updated_at'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spent_microusd', sa.BigInteger(), server_default='0', nullable=False))

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('spent_microusd')

    with op.batch_alter_table('campaign_leads', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_leads_campaign_updated')
        batch_op.drop_index('ix_campaign_leads_campaign_due')

    with op.batch_alter_table('budget_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_budget_reservations_campaign')

    op.drop_table('budget_reservations')
    op.drop_table('rate_limits')
