"""Inbound messages: replies, STOPs and other texts and emails that reach a tenant.

One row per provider message (Twilio's MessageSid, an email's Message-ID), unique per tenant and
provider so that a provider's retry is stored once. The reply agent's queue reads the rows not
processed yet. Row-level security on PostgreSQL comes from migrate-on-start (core.rls secures
every table with a tenant_id after each upgrade), as for every table added after 0007.

Revision ID: 0022_inbound
Revises: 0020_import_warnings
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0022_inbound"
down_revision: str | Sequence[str] | None = "0020_import_warnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("lead_id", BIG_ID, nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("from_address", sa.String(length=254), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=255), nullable=False),
        sa.Column("in_reply_to_message_id", BIG_ID, nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("received_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("created_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("classification", sa.String(length=24), nullable=True),
        sa.Column("classification_detail", sa.JSON(), nullable=False),
        sa.Column("classified_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("suggested_reply", sa.Text(), nullable=True),
        sa.Column("processed_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("handled_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("handled_by_user_id", sa.Integer(), nullable=True),
        sa.Column("assigned_user_id", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_inbound_messages_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_inbound_messages_lead_id_leads"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["in_reply_to_message_id"],
            ["messages.id"],
            name=op.f("fk_inbound_messages_in_reply_to_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_inbound_messages_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["handled_by_user_id"],
            ["users.id"],
            name=op.f("fk_inbound_messages_handled_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["assigned_user_id"],
            ["users.id"],
            name=op.f("fk_inbound_messages_assigned_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "tenant_id",
            "provider",
            "provider_message_id",
            name=op.f("uq_inbound_messages_tenant_id_provider_provider_message_id"),
        ),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_messages_tenant_received", ["tenant_id", "received_at"], unique=False)
        batch_op.create_index("ix_inbound_messages_lead_received", ["lead_id", "received_at"], unique=False)
        batch_op.create_index("ix_inbound_messages_tenant_processed", ["tenant_id", "processed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_messages_tenant_processed")
        batch_op.drop_index("ix_inbound_messages_lead_received")
        batch_op.drop_index("ix_inbound_messages_tenant_received")
    op.drop_table("inbound_messages")
