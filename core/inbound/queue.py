"""The reply agent's queue: claim the inbound messages it has not read, run it on each, store the result.

A claim sets `processed_at` to the claim time in one atomic UPDATE (its inner SELECT ... FOR UPDATE
SKIP LOCKED on PostgreSQL, so workers skip each other's rows; SQLite has one writer), so any
number of workers may run. A message is done when `classified_at` is set too. One whose worker
died (claimed, never classified) is claimed again once a lease has passed; the agent's acts are
idempotent (a stopped sequence stays stopped, a suppression is added once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import Database
from core.inbound.actions import act_on_reply
from core.inbound.agent import ActFn, ReplyContext, ReplyData, ReplyState, run_reply_agent
from core.inbound.classify import ReplyClass
from core.logs import bound, get_logger
from core.models import Campaign, CampaignLead, InboundMessage, Lead, LLMCall, Message, Tenant
from core.pipeline.drafting import run_secrets
from core.pipeline.research import lead_facts, playbook_facts
from core.pipeline.run_inputs import lead_data, tenant_data
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import CampaignData
from core.pipeline.store import is_transient_database_error
from core.webhooks.events import EventType, campaign_ref, emit, iso_utc

log = get_logger(__name__)
CONVERSATION_MESSAGES = 10  # the earlier messages the model sees beside the reply
MODEL_CALLS_PER_REPLY = 3  # classify, suggest, and one regeneration after the guard
LEASE_MARGIN_SECONDS = 60.0


def reply_lease_seconds(settings: Settings) -> float:
    """How long a claim holds: past the longest run the settings allow (a classification and two
    suggestions, each with every retry timing out), so a slow model never lets a second worker in."""
    longest_run = MODEL_CALLS_PER_REPLY * (settings.llm_max_retries + 1) * settings.llm_timeout_seconds
    return max(float(settings.lease_seconds), longest_run + LEASE_MARGIN_SECONDS)


def waiting_condition(now: datetime, lease_seconds: float) -> Any:
    """Not claimed yet, or claimed by a worker that never finished within a lease."""
    stale = now - timedelta(seconds=lease_seconds)
    return or_(
        InboundMessage.processed_at.is_(None),
        and_(InboundMessage.classified_at.is_(None), InboundMessage.processed_at <= stale),
    )


def claim_replies(db: Database, *, now: datetime, limit: int, lease_seconds: float) -> list[int]:
    """Claim up to `limit` messages for the agent, oldest first; returns their ids."""
    candidates = (
        select(InboundMessage.id)
        .where(waiting_condition(now, lease_seconds))
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(limit)
    )
    if not db.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    with db.session(system=True) as session, session.begin():
        return list(session.scalars(
            update(InboundMessage)
            .where(InboundMessage.id.in_(candidates.scalar_subquery()))
            .values(processed_at=now)
            .returning(InboundMessage.id)
            .execution_options(synchronize_session=False)
        ))


def _conversation(session: Any, lead_id: int, before: datetime) -> list[dict[str, Any]]:
    sent = session.execute(
        select(Message.sent_at, Message.created_at, Message.subject, Message.body)
        .where(Message.lead_id == lead_id, Message.created_at <= before)
        .order_by(Message.created_at.desc()).limit(CONVERSATION_MESSAGES)
    ).all()
    received = session.execute(
        select(InboundMessage.received_at, InboundMessage.subject, InboundMessage.body)
        .where(InboundMessage.lead_id == lead_id, InboundMessage.received_at < before)
        .order_by(InboundMessage.received_at.desc()).limit(CONVERSATION_MESSAGES)
    ).all()
    entries = [{"from": "us", "at": m.sent_at or m.created_at, "subject": m.subject, "body": m.body}
               for m in sent]
    entries += [{"from": "them", "at": r.received_at, "subject": r.subject, "body": r.body} for r in received]
    entries.sort(key=lambda e: e["at"])
    return [{**e, "at": e["at"].isoformat()} for e in entries[-CONVERSATION_MESSAGES:]]


def load_reply_context(
    db: Database, runtime: PipelineRuntime, inbound_id: int, *, now: datetime, act: ActFn = act_on_reply
) -> ReplyContext | None:
    """Everything one run needs, read in one short transaction; None when the message is gone."""
    with db.session(system=True, read_only=True) as session:
        tenant_id = session.scalar(select(InboundMessage.tenant_id).where(InboundMessage.id == inbound_id))
    if tenant_id is None:
        return None
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        row = session.get(InboundMessage, inbound_id)
        tenant = session.get(Tenant, tenant_id)
        if row is None or tenant is None:
            return None
        lead = session.get(Lead, row.lead_id) if row.lead_id else None
        campaign = session.get(Campaign, row.campaign_id) if row.campaign_id else None
        facts: list[dict[str, str]] = []
        conversation: list[dict[str, Any]] = []
        if lead is not None:
            research = session.scalar(
                select(CampaignLead.research)
                .where(CampaignLead.lead_id == lead.id, CampaignLead.campaign_id == row.campaign_id)
            ) if row.campaign_id else None
            facts = list(research or []) + lead_facts(lead_data(lead)) + playbook_facts(
                dict(tenant.playbook or {}), lead.industry)
            conversation = _conversation(session, lead.id, row.received_at)
        canary, nonce = run_secrets()
        return ReplyContext(
            runtime=runtime, db=db,
            reply=ReplyData(id=row.id, tenant_id=tenant_id, channel=row.channel,
                            from_address=row.from_address, body=row.body, received_at=row.received_at,
                            subject=row.subject, lead_id=row.lead_id, campaign_id=row.campaign_id),
            tenant=tenant_data(tenant), lead=lead_data(lead) if lead else None,
            campaign=CampaignData.of(campaign) if campaign else None, facts=facts,
            conversation=conversation, canary=canary, nonce=nonce, now=now, act=act,
        )


@dataclass(frozen=True)
class ReplyProcessed:
    id: int
    classification: str
    actions: list[str]


def store_result(db: Database, context: ReplyContext, state: ReplyState) -> None:
    """The decision on the message, and the model calls it cost, in one transaction."""
    now = context.now
    with db.session(tenant_id=context.tenant.id) as session, session.begin():
        row = session.get(InboundMessage, context.reply.id)
        if row is None:
            return
        row.classification = state.get("classification", ReplyClass.unclassified.value)
        row.classification_detail = dict(state.get("detail") or {})
        row.classified_at = row.processed_at = now
        row.suggested_reply = state.get("suggested_reply")
        if state.get("handled") and row.handled_at is None:
            row.handled_at = now
        if row.assigned_user_id is None:
            row.assigned_user_id = state.get("assigned_user_id")
        emit_reply_received(session, row, now)
        for call in state.get("llm_calls") or []:
            session.add(LLMCall(
                tenant_id=context.tenant.id, campaign_id=context.reply.campaign_id, node=call.node,
                provider=call.provider, model=call.model, input_tokens=call.input_tokens,
                output_tokens=call.output_tokens, cost_microusd=call.cost_microusd,
                latency_ms=call.latency_ms, error=call.error, created_at=now,
            ))


def process_reply(db: Database, runtime: PipelineRuntime, inbound_id: int,
                  *, act: ActFn = act_on_reply) -> ReplyProcessed | None:
    """Run the agent on one claimed message and store what it decided."""
    now = runtime.now()
    context = load_reply_context(db, runtime, inbound_id, now=now, act=act)
    if context is None:
        return None
    with bound(tenant_id=context.tenant.id, inbound_message_id=inbound_id):
        state = run_reply_agent(context)
        store_result(db, context, state)
    detail = state.get("detail") or {}
    return ReplyProcessed(inbound_id, state.get("classification", ""), list(detail.get("actions") or []))


def process_waiting_replies(
    db: Database, runtime: PipelineRuntime, *, limit: int, lease_seconds: float
) -> list[ReplyProcessed]:
    """Up to `limit` messages, each claimed just before the agent runs on it (a claim's lease
    starts when its own work does); one that fails is retried after a lease."""
    done: list[ReplyProcessed] = []
    for _ in range(limit):
        claimed = claim_replies(db, now=runtime.now(), limit=1, lease_seconds=lease_seconds)
        if not claimed:
            break
        inbound_id = claimed[0]
        try:
            if (processed := process_reply(db, runtime, inbound_id)) is not None:
                done.append(processed)
        except Exception as exc:
            if is_transient_database_error(exc):
                # The database is away: the claim lapses and the message is read again later.
                log.warning("reply_agent_interrupted", inbound_message_id=inbound_id, error=str(exc))
                continue
            # A bug, not the reply's fault: a person reads it instead of the agent trying forever.
            log.exception("reply_agent_failed", inbound_message_id=inbound_id)
            _store_failure(db, inbound_id, runtime.now(), f"internal error: {type(exc).__name__}: {exc}")
    return done


def _store_failure(db: Database, inbound_id: int, now: datetime, reason: str) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(
            update(InboundMessage).where(InboundMessage.id == inbound_id)
            .values(classification=ReplyClass.unclassified.value, classified_at=now, processed_at=now,
                    classification_detail={"evidence": [], "source": "rules", "error": reason})
        )
        if (row := session.get(InboundMessage, inbound_id)) is not None:
            emit_reply_received(session, row, now)


def emit_reply_received(session: Session, row: InboundMessage, now: datetime) -> None:
    """`reply.received` once the agent has classified the reply (the class is the point of it)."""
    emit(session, row.tenant_id, EventType.reply_received, lambda: {
        "inbound_message_id": row.id, "lead_id": row.lead_id,
        "campaign": campaign_ref(session, row.campaign_id),
        "in_reply_to_message_id": row.in_reply_to_message_id, "channel": row.channel,
        "classification": row.classification, "received_at": iso_utc(row.received_at),
        "classified_at": iso_utc(now),
    }, now=now)
