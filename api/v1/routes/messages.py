"""Messages, conversations and replies: what was sent to a lead, what came back, the Inbox's list.

A message or a conversation shows a person's address and words: core lets those who may read
leads see them. The replies list is the Inbox's, open to every role that opens the Inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.v1.cursors import BadCursor, decode_cursor, encode_cursor
from api.v1.deps import ActorDep
from api.v1.etags import with_etag
from api.v1.schemas import Page, UtcDateTime
from core.inbound.inbox import ConversationEntry, InboxFilter, InboxItem, list_inbox
from core.leads.messages import MessageView, get_message, lead_conversation, lead_messages

router = APIRouter(tags=["messages"])


class MessageOut(BaseModel):
    id: int
    lead_id: int | None = Field(description="null once the lead was erased")
    campaign_id: int
    campaign: str
    step: int = Field(description="0: the first touch; negative: a person's answer from the Inbox")
    channel: str
    to_address: str
    subject: str | None
    body: str
    status: str = Field(description="sending, sent, delivered, undelivered, failed or unknown")
    error: str | None
    segments: int
    provider: str
    created_at: UtcDateTime
    sent_at: UtcDateTime | None
    delivered_at: UtcDateTime | None

    @classmethod
    def of(cls, view: MessageView) -> MessageOut:
        return cls(**vars(view))


class MessageList(BaseModel):
    items: list[MessageOut]


class ConversationItem(BaseModel):
    direction: str = Field(description="out: sent to the lead; in: a reply from it")
    channel: str
    at: UtcDateTime
    subject: str | None
    body: str
    status: str | None = Field(description="out: the delivery status; in: the reply's class")
    reply_id: int | None = Field(description="in: the reply's id")

    @classmethod
    def of(cls, entry: ConversationEntry) -> ConversationItem:
        return cls(
            direction=entry.direction,
            channel=entry.channel,
            at=entry.at,
            subject=entry.subject,
            body=entry.body,
            status=entry.status,
            reply_id=entry.inbound_id,
        )


class Conversation(BaseModel):
    items: list[ConversationItem] = Field(description="Oldest first, as the Inbox shows them")


class ReplyOut(BaseModel):
    id: int
    lead_id: int | None
    lead_name: str
    channel: str
    from_address: str
    subject: str | None
    body: str
    received_at: UtcDateTime
    campaign_id: int | None
    campaign: str | None
    classification: str | None = Field(description="null until the reply agent has read it")
    detail: dict[str, Any] = Field(description="The evidence behind the class")
    suggested_reply: str | None
    handled: bool
    handled_at: UtcDateTime | None
    handled_by: str | None
    assigned_user_id: int | None

    @classmethod
    def of(cls, item: InboxItem) -> ReplyOut:
        return cls(
            id=item.id,
            lead_id=item.lead_id,
            lead_name=item.lead_name,
            channel=item.channel,
            from_address=item.from_address,
            subject=item.subject,
            body=item.body,
            received_at=item.received_at,
            campaign_id=item.campaign_id,
            campaign=item.campaign_name,
            classification=item.classification,
            detail=item.detail,
            suggested_reply=item.suggested_reply,
            handled=item.handled_at is not None,
            handled_at=item.handled_at,
            handled_by=item.handled_by,
            assigned_user_id=item.assigned_user_id,
        )


@router.get("/leads/{lead_id}/messages", response_model=MessageList)
def messages_of_lead(lead_id: int, database: DatabaseDep, actor: ActorDep) -> MessageList:
    """Every message sent (or being sent) to the lead, oldest first."""
    return MessageList(items=[MessageOut.of(m) for m in lead_messages(database, actor, lead_id)])


@router.get("/leads/{lead_id}/conversation", response_model=Conversation)
def conversation_of_lead(lead_id: int, database: DatabaseDep, actor: ActorDep) -> Conversation:
    """Messages out and replies in, in order, as the Inbox shows the conversation."""
    return Conversation(items=[ConversationItem.of(e) for e in lead_conversation(database, actor, lead_id)])


@router.get("/messages/{message_id}", response_model=MessageOut)
def message(message_id: int, request: Request, database: DatabaseDep, actor: ActorDep) -> Response:
    return with_etag(request, MessageOut.of(get_message(database, actor, message_id)))


def _after(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    at, last_id = decode_cursor(cursor, 2)
    try:
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time carries its offset")
        return moment, int(last_id)
    except (TypeError, ValueError):
        raise BadCursor("the cursor is not one this API gave out; start again without it") from None


@router.get("/replies", response_model=Page[ReplyOut])
def replies(
    database: DatabaseDep,
    actor: ActorDep,
    classification: Annotated[str | None, Query(alias="class", description="e.g. interested")] = None,
    handled: Annotated[bool | None, Query(description="false: waiting for a person; omitted: all")] = None,
    campaign_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Page[ReplyOut]:
    """The Inbox's replies newest first, a page at a time: pass `next_cursor` back as `cursor`."""
    view = InboxFilter(classification=classification, campaign_id=campaign_id, handled=handled)
    found = list_inbox(database, actor, view, limit=limit + 1, after=_after(cursor))
    items = found[:limit]
    next_cursor = None
    if len(found) > limit and items:
        next_cursor = encode_cursor(items[-1].received_at.isoformat(), items[-1].id)
    return Page(items=[ReplyOut.of(i) for i in items], next_cursor=next_cursor)
