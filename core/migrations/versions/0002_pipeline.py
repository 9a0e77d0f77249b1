"""Pipeline: approved drafts survive restarts, and the outbox keeps its own durable record.

Revision ID: 0002_pipeline
Revises: 0001
Create Date: 2026-11-20 21:55:34.251015
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = '0002_pipeline'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_outbox_messages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_messages_idempotency_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_tenant_created', ['tenant_id', 'created_at'], unique=False)

    with op.batch_alter_table('campaign_leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_at', core.models.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('campaign_leads', schema=None) as batch_op:
        batch_op.drop_column('approved_at')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_tenant_created')

    op.drop_table('outbox_messages')
