"""The outbox: the default provider that records messages in the database and sends nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.channels.base import OutgoingMessage, SendReceipt
from core.db import Database, execute_core
from core.models import OutboxMessage


def _record_insert(make_insert: Any) -> Any:
    # A repeated key inserts nothing (the message is already in the outbox) instead of raising.
    table = OutboxMessage.__table__
    return make_insert(table).on_conflict_do_nothing().returning(table.c.id)


_RECORD = {"sqlite": _record_insert(sqlite_insert), "postgresql": _record_insert(postgresql_insert)}


class OutboxSender:
    """Each send commits one `outbox_messages` row keyed by the idempotency key."""

    name = "outbox"

    def send(self, message: OutgoingMessage, *, db: Database) -> SendReceipt:
        with db.session(tenant_id=message.tenant_id) as session, session.begin():
            return self.record(message, session=session)

    def record(self, message: OutgoingMessage, *, session: Session) -> SendReceipt:
        """Write the outbox row in the caller's transaction, which the tenant's session scopes.

        The pipeline calls this inside the transaction that writes the ledger row and marks it
        `sent`: the outbox lives in the same database, so the record and the mark commit
        together or not at all, and no `sending` row is ever left to reconcile.
        """
        row = {
            "tenant_id": message.tenant_id,
            "idempotency_key": message.idempotency_key,
            "channel": message.channel,
            "to_address": message.to_address,
            "subject": message.subject,
            "body": message.body,
        }
        dialect = session.get_bind().dialect.name
        outbox_id = execute_core(session, _RECORD[dialect], row).scalar()
        if outbox_id is None:
            # Already recorded under this key: sending is idempotent, return the same receipt.
            outbox_id = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == message.idempotency_key)
            )
        return SendReceipt(f"outbox-{outbox_id}")

    def was_sent(self, idempotency_key: str, *, tenant_id: int, db: Database) -> bool | None:
        with db.session(tenant_id=tenant_id, read_only=True) as session:
            found = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
            )
        return found is not None
