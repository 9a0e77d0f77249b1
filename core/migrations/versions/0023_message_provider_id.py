"""Messages found by their provider's id: email replies and bounces name the Message-ID they answer

An inbound email is threaded (and a bounce traced) to the outbound email whose Message-ID it
quotes, in any tenant, before the tenant is known: one indexed look-up per inbound email instead
of a scan of the send ledger.

Revision ID: 0023_message_provider_id
Revises: 0022_inbound
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_message_provider_id"
down_revision: str | Sequence[str] | None = "0022_inbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_provider_message_id", "messages", ["provider_message_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
