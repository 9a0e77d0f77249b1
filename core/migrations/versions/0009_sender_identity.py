"""sender identity: SMS sender ids unique across tenants, email senders verified

`tenants.sms_sender_key` is the sender id as compared (E.164 for a number, folded for an
alphanumeric id), unique so two tenants cannot send as one. Existing duplicates keep their
first tenant; the later ones lose the id (they send from the deployment's number again) and the
change is written to their audit log. `sender_verifications` holds each tenant's DNS token or
confirmation code for an email From domain or address; a verified one belongs to one tenant.

Revision ID: 0009_sender_identity
Revises: 0008_user_sessions
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0009_sender_identity"
down_revision: str | Sequence[str] | None = "0008_user_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERIFIED = sa.text("verified_at IS NOT NULL")
DUPLICATE_REASON = "another tenant set this SMS sender id first; sender ids are unique across tenants"


def _backfill_sender_keys() -> None:
    from core.tenants import sms_sender_key  # the one normalisation, as the service applies it

    bind = op.get_bind()
    tenants = sa.table(
        "tenants",
        sa.column("id", sa.Integer),
        sa.column("sms_sender_id", sa.String),
        sa.column("sms_sender_key", sa.String),
    )
    audit = sa.table(
        "audit_log",
        sa.column("tenant_id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("entity", sa.String),
        sa.column("entity_id", sa.String),
        sa.column("details", sa.JSON),
        sa.column("created_at", core.models.UTCDateTime()),
    )
    seen: set[str] = set()
    rows = bind.execute(
        sa.select(tenants.c.id, tenants.c.sms_sender_id)
        .where(tenants.c.sms_sender_id.is_not(None))
        .order_by(tenants.c.id)
    ).all()
    for tenant_id, sender_id in rows:
        key = sms_sender_key(sender_id)
        if key in seen:
            bind.execute(sa.update(tenants).where(tenants.c.id == tenant_id).values(sms_sender_id=None))
            bind.execute(
                sa.insert(audit).values(
                    tenant_id=tenant_id,
                    action="update",
                    entity="tenant_settings",
                    entity_id=str(tenant_id),
                    details={"sms_sender_id": {"from": sender_id, "to": None}, "reason": DUPLICATE_REASON},
                    created_at=datetime.now(UTC),
                )
            )
            continue
        seen.add(key)
        bind.execute(sa.update(tenants).where(tenants.c.id == tenant_id).values(sms_sender_key=key))


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("sms_sender_key", sa.String(length=32), nullable=True))
    _backfill_sender_keys()
    with op.batch_alter_table("tenants") as batch:
        batch.create_unique_constraint("uq_tenants_sms_sender_key", ["sms_sender_key"])
    op.create_table(
        "sender_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.Column("expires_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("last_checked_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("verified_at", core.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", core.models.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sender_verifications_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_verifications")),
        sa.UniqueConstraint(
            "tenant_id", "kind", "value", name=op.f("uq_sender_verifications_tenant_id_kind_value")
        ),
    )
    op.create_index(
        "uq_sender_verifications_verified",
        "sender_verifications",
        ["kind", "value"],
        unique=True,
        postgresql_where=VERIFIED,
        sqlite_where=VERIFIED,
    )


def downgrade() -> None:
    op.drop_index("uq_sender_verifications_verified", table_name="sender_verifications")
    op.drop_table("sender_verifications")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_constraint("uq_tenants_sms_sender_key", type_="unique")
        batch.drop_column("sms_sender_key")
