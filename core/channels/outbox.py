"""The outbox: the default provider that records messages in the database and sends nothing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.channels.base import OutgoingMessage, SendReceipt
from core.db import Database
from core.models import OutboxMessage


class OutboxSender:
    """Each send commits one `outbox_messages` row keyed by the idempotency key."""

    name = "outbox"

    def send(self, message: OutgoingMessage, *, db: Database) -> SendReceipt:
        try:
            with db.session(tenant_id=message.tenant_id) as session, session.begin():
                row = OutboxMessage(
                    tenant_id=message.tenant_id, idempotency_key=message.idempotency_key,
                    channel=message.channel, to_address=message.to_address,
                    subject=message.subject, body=message.body,
                )
                session.add(row)
                session.flush()
                return SendReceipt(f"outbox-{row.id}")
        except IntegrityError:
            # Already recorded under this key: sending is idempotent, return the same receipt.
            with db.session(tenant_id=message.tenant_id, read_only=True) as session:
                existing = session.scalar(
                    select(OutboxMessage.id).where(OutboxMessage.idempotency_key == message.idempotency_key)
                )
            if existing is None:
                raise
            return SendReceipt(f"outbox-{existing}")

    def was_sent(self, idempotency_key: str, *, tenant_id: int, db: Database) -> bool | None:
        with db.session(tenant_id=tenant_id, read_only=True) as session:
            found = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
            )
        return found is not None
