"""The outbox: the default provider that records messages in the database and sends nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.channels.base import OutgoingMessage, SendReceipt
from core.db import Database, execute_core
from core.models import OutboxMessage


def _record_insert(make_insert: Any) -> Any:
    # A repeated key inserts nothing (the message is already in the outbox) instead of raising.
    table = OutboxMessage.__table__
    return make_insert(table).on_conflict_do_nothing().returning(table.c.id)


_RECORD = {"sqlite": _record_insert(sqlite_insert), "postgresql": _record_insert(postgresql_insert)}


class OutboxSender:
    """Each send commits one `outbox_messages` row keyed by the idempotency key.

    A provider like the others: the pipeline commits the `sending` ledger row, calls `send`, then
    marks the row `sent`. A crash in between leaves the row `sending`, and reconciliation asks
    `was_sent`, which the outbox answers exactly from its own table.
    """

    name = "outbox"

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, message: OutgoingMessage) -> SendReceipt:
        row = {
            "tenant_id": message.tenant_id,
            "idempotency_key": message.idempotency_key,
            "channel": message.channel,
            "to_address": message.to_address,
            "subject": message.subject,
            "body": message.body,
        }
        with self.db.session(tenant_id=message.tenant_id) as session, session.begin():
            outbox_id = execute_core(session, _RECORD[self.db.engine.dialect.name], row).scalar()
            if outbox_id is None:
                # Already recorded under this key: sending is idempotent, return the same receipt.
                outbox_id = session.scalar(
                    select(OutboxMessage.id).where(OutboxMessage.idempotency_key == message.idempotency_key)
                )
        return SendReceipt(f"outbox-{outbox_id}")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        with self.db.session(tenant_id=tenant_id, read_only=True) as session:
            found = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
            )
        return found is not None
