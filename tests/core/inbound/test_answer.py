"""A person's answer: sent once, on the lead's channel, only where outreach could be sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.channels.base import NotSent, OutgoingMessage, SendReceipt
from core.channels.outbox import OutboxSender
from core.db import Database
from core.errors import Conflict, LeadflowError, PermissionDenied, ValidationError
from core.inbound.answer import send_answer
from core.models import InboundMessage, Lead, Message, OutboxMessage, Role, Suppression
from tests.core.inbound.conftest import LEAD_EMAIL, LEAD_PHONE, NOW, Replies
from tests.factories import make_actor

TEXT = "Hi Ada, it starts at $99 a month. Shall we talk Thursday?"


class RefusingSender:
    """A provider that refuses the first message and takes the next."""

    name = "twilio"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> SendReceipt:
        if not self.sent:
            self.sent.append(message)
            raise NotSent("the number is temporarily unreachable", permanent=False)
        self.sent.append(message)
        return SendReceipt("SM123")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


def _ledger(replies: Replies) -> list[tuple[object, ...]]:
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        return [tuple(r) for r in session.execute(
            select(Message.step, Message.status, Message.to_address, Message.subject, Message.provider)
            .where(Message.step == -1)).all()]


def test_an_answer_is_sent_once_and_the_reply_handled(replies: Replies) -> None:
    inbound = replies.receive("How much is it?")
    sent = send_answer(replies.db, replies.manager, inbound, TEXT, now=NOW)
    assert _ledger(replies) == [(-1, "sent", LEAD_PHONE, None, "outbox")]
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        assert session.scalar(select(OutboxMessage.body)) == TEXT
        reply = session.get(InboundMessage, inbound)
        assert reply is not None
        assert (reply.handled_at, reply.handled_by_user_id) == (NOW, replies.manager.user_id)
    assert sent.provider_message_id.startswith("outbox-")
    with pytest.raises(Conflict, match="already answered"):
        send_answer(replies.db, replies.manager, inbound, TEXT, now=NOW)


def test_an_email_answer_keeps_the_thread_subject_and_footer(replies: Replies) -> None:
    inbound = replies.receive("Interested, tell me more", channel="email", subject="Re: Quick idea")
    send_answer(replies.db, replies.manager, inbound, TEXT, now=NOW)
    assert _ledger(replies) == [(-1, "sent", LEAD_EMAIL, "Re: Quick idea", "outbox")]
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        body = session.scalar(select(Message.body).where(Message.step == -1)) or ""
    assert body.startswith(TEXT) and "Acme Inc, 1 Main St, Springfield" in body


def test_outside_the_send_window_nothing_is_sent(replies: Replies) -> None:
    inbound = replies.receive("How much is it?")
    three_in_the_morning_in_new_york = NOW.replace(hour=8)
    with pytest.raises(Conflict, match="the recipient's window opens at 2026-11-18 08:00"):
        send_answer(replies.db, replies.manager, inbound, TEXT, now=three_in_the_morning_in_new_york)
    assert _ledger(replies) == []


def test_a_suppressed_or_opted_out_lead_gets_nothing(replies: Replies) -> None:
    inbound = replies.receive("How much is it?")
    with replies.db.session(tenant_id=replies.tenant_id) as session, session.begin():
        session.add(Suppression(channel="sms", address=LEAD_PHONE, reason="manual", source="test"))
    with pytest.raises(Conflict, match="suppression list"):
        send_answer(replies.db, replies.manager, inbound, TEXT, now=NOW)
    with replies.db.session(tenant_id=replies.tenant_id) as session, session.begin():
        lead = session.get(Lead, replies.lead_id)
        assert lead is not None
        lead.opted_out_at = NOW - timedelta(hours=1)
    with pytest.raises(Conflict, match="opted out"):
        send_answer(replies.db, replies.manager, inbound, TEXT, now=NOW)
    assert _ledger(replies) == []


def test_an_analyst_may_not_answer_and_an_empty_answer_is_refused(db: Database, replies: Replies) -> None:
    inbound = replies.receive("How much is it?")
    with pytest.raises(PermissionDenied):
        send_answer(db, make_actor(db, replies.tenant_id, Role.analyst), inbound, TEXT, now=NOW)
    with pytest.raises(ValidationError, match="write the answer first"):
        send_answer(db, replies.manager, inbound, "   ", now=NOW)


def test_a_refused_send_can_be_tried_again(replies: Replies) -> None:
    inbound = replies.receive("How much is it?")
    sender = RefusingSender()
    senders = {"sms": sender, "email": OutboxSender(replies.db)}
    with pytest.raises(LeadflowError, match="not sent: the number is temporarily unreachable"):
        send_answer(replies.db, replies.manager, inbound, TEXT, senders=senders, now=NOW)
    assert _ledger(replies) == [(-1, "failed", LEAD_PHONE, None, "twilio")]
    send_answer(replies.db, replies.manager, inbound, TEXT, senders=senders, now=NOW)
    assert _ledger(replies) == [(-1, "sent", LEAD_PHONE, None, "twilio")]
    assert [m.idempotency_key for m in sender.sent] == [f"answer-in{inbound}"] * 2
