"""The outbox provider: a durable, idempotent record that reconciliation can ask."""

from __future__ import annotations

from sqlalchemy import func, select

from core.channels.base import OutgoingMessage
from core.channels.outbox import OutboxSender
from core.db import Database
from core.models import OutboxMessage
from tests.factories import make_tenant


def test_send_records_once_per_key_and_answers_was_sent(db: Database) -> None:
    tenant_id = make_tenant(db)
    message = OutgoingMessage(
        tenant_id=tenant_id,
        campaign_id=1,
        channel="sms",
        to_address="+14155550101",
        body="Hi Ada. Reply STOP to opt out",
        idempotency_key="cl1-s0",
    )
    outbox = OutboxSender(db)
    assert outbox.was_sent("cl1-s0", tenant_id=tenant_id) is False
    first = outbox.send(message)
    again = outbox.send(message)
    assert first == again and first.provider_message_id.startswith("outbox-")
    assert outbox.was_sent("cl1-s0", tenant_id=tenant_id) is True
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 1
        assert session.scalar(select(OutboxMessage.body)) == "Hi Ada. Reply STOP to opt out"
