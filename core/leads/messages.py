"""A lead's messages in the send ledger, one message by its id, and the lead's conversation.

Messages carry a person's address and what was written to them: reading them is reading the
lead (Permission.view_leads), whatever screen or endpoint asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from core.db import Database
from core.errors import NotFound
from core.inbound.inbox import ConversationEntry, conversation
from core.leads.detail import load_lead
from core.models import Campaign, Message
from core.permissions import Actor, Permission


@dataclass(frozen=True)
class MessageView:
    id: int
    lead_id: int | None  # None once the lead was erased (the row stays, anonymised)
    campaign_id: int
    campaign: str
    step: int  # 0: the first touch; negative: a person's answer from the Inbox
    channel: str
    to_address: str
    subject: str | None
    body: str
    status: str
    error: str | None
    segments: int
    provider: str
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


def _view(message: Message, campaign: str) -> MessageView:
    return MessageView(
        message.id,
        message.lead_id,
        message.campaign_id,
        campaign,
        message.step,
        message.channel,
        message.to_address,
        message.subject,
        message.body,
        message.status,
        message.error,
        message.segments,
        message.provider,
        message.created_at,
        message.sent_at,
        message.delivered_at,
    )


def lead_messages(db: Database, actor: Actor, lead_id: int) -> list[MessageView]:
    """Every message sent (or being sent) to the lead, oldest first; NotFound for no such lead."""
    actor.require(Permission.view_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        load_lead(session, lead_id)
        rows = session.execute(
            select(Message, Campaign.name)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.lead_id == lead_id)
            .order_by(Message.id)
        ).all()
        return [_view(message, name) for message, name in rows]


def get_message(db: Database, actor: Actor, message_id: int) -> MessageView:
    actor.require(Permission.view_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        row = session.execute(
            select(Message, Campaign.name)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.id == message_id)
        ).first()
        if row is None:
            raise NotFound(f"message #{message_id} does not exist")
        return _view(row[0], row[1])


def lead_conversation(db: Database, actor: Actor, lead_id: int) -> list[ConversationEntry]:
    """The lead's conversation as the Inbox shows it (sent and received, oldest first), for a
    caller who may read the lead; NotFound for no such lead."""
    actor.require(Permission.view_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        load_lead(session, lead_id)
    return conversation(db, actor, lead_id)
