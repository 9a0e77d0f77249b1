"""API authentication and conventions: refresh tokens, API keys, rate counters, idempotency keys

Refresh tokens (per sign-in family), API keys and stored idempotent answers belong to a tenant
(row-level security comes from migrate-on-start, core.rls, as for every table after 0007); the
rate counters are keyed by credential and hold no tenant data.

Revision ID: 0024_api_auth
Revises: 0023_reply_agent
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0024_api_auth"
down_revision: str | Sequence[str] | None = "0023_reply_agent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "api_refresh_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("api_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_refresh_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("api_refresh_tokens") as batch:
        batch.create_index("ix_api_refresh_tokens_family", ["family", "revoked_at"], unique=False)
        batch.create_index("ix_api_refresh_tokens_user", ["user_id", "revoked_at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("api_keys"),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_api_keys_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.create_index("ix_api_keys_tenant_created", ["tenant_id", "created_at"], unique=False)

    op.create_table(
        "api_rate_counters",
        sa.Column("credential", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("credential", "window_start", name=op.f("pk_api_rate_counters")),
    )
    with op.batch_alter_table("api_rate_counters") as batch:
        batch.create_index("ix_api_rate_counters_window", ["window_start"], unique=False)

    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        _tenant_fk("api_idempotency_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_idempotency_keys_key_hash")),
    )
    with op.batch_alter_table("api_idempotency_keys") as batch:
        batch.create_index("ix_api_idempotency_keys_created", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("api_idempotency_keys")
    op.drop_table("api_rate_counters")
    op.drop_table("api_keys")
    op.drop_table("api_refresh_tokens")
