"""The end of a run in the database: the outcome, its events and model calls in one transaction.

Every write of an outcome is guarded by the lease (`lease_owner`), so a worker whose lease
expired cannot overwrite the work of the one that took over. The run's inputs are read by
core.pipeline.run_inputs and its ledger row written by core.pipeline.ledger.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import CursorResult, Result, Table, bindparam, insert, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from core.channels.base import redact_messages_in, redact_secrets
from core.channels.receipts import status_not_lowered
from core.compliance.suppression import suppress_address
from core.db import Database, execute_core, tenant_pinned
from core.lifecycle import pause_campaign_in
from core.llm.records import ModelCallRecord
from core.models import (
    FINAL_ENROLMENT_STATUSES,
    Campaign,
    CampaignLead,
    Event,
    LLMCall,
    Message,
    MessageStatus,
    SuppressionReason,
    utcnow,
)
from core.pipeline.state import PipelineEvent
from core.webhooks.events import EventType, emit, message_data


def _error_chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, the driver error it wraps (SQLAlchemy's `orig`) and its explicit causes."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending += [getattr(error, "orig", None), error.__cause__]


def is_transient_database_error(exc: BaseException) -> bool:
    """A lost connection, a failover or a busy database: the same work succeeds when tried later.

    PostgreSQL: every psycopg OperationalError (the connection dropped, the server shutting
    down or in recovery, a deadlock or serialisation failure) and a write refused by a read-only
    server (a client still connected to a demoted primary); SQLAlchemy: a connection it
    invalidated, a pool timeout. SQLite: "database is locked" (another writer held the lock past
    busy_timeout). Any other error, such as a missing table, is a bug.
    """
    for error in _error_chain(exc):
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
            return True
        if isinstance(error, (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)):
            return True
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error).lower():
            return True
    return False


def _rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE (how a lease check learns the row is still ours)."""
    return int(cast(CursorResult[Any], result).rowcount)


@dataclass(frozen=True)
class Outcome:
    """Everything the end of a run writes."""

    tenant_id: int
    campaign_id: int
    campaign_lead_id: int
    lead_id: int
    lease_owner: str
    trace_id: str
    status: str | None  # None: the lease was lost, the enrolment is not touched
    values: dict[str, Any]  # campaign_leads columns to set besides status and the lease
    events: list[PipelineEvent]
    llm_calls: list[Any]
    message_id: int | None = None
    message_values: dict[str, Any] | None = None
    suppress: dict[str, str] | None = None
    pause_reason: str | None = None  # a provider refused the account: pause the campaign
    provider_failure: str | None = None  # the run's last provider call failed, for this reason
    provider_ok: bool = False  # the run's last provider call succeeded
    failure_threshold: int = 0  # provider failures in a row that pause the campaign (0: never)


# Plain executemany inserts, run by execute_core (which checks each row's tenant): the ORM's
# bulk-insert bookkeeping (identity, defaults per row) is not needed for log rows.
_INSERT_EVENTS = insert(cast(Table, Event.__table__))
_INSERT_LLM_CALLS = insert(cast(Table, LLMCall.__table__))
_statement_cache: dict[tuple[str, ...], Any] = {}
_statement_lock = threading.Lock()


def _cached_update(model: type[Message | CampaignLead], keys: tuple[str, ...]) -> Any:
    """UPDATE model SET <keys> WHERE id = :row_id [AND lease_owner = :lease_owner], built once per key set.

    Pinned to the session's tenant (core.db.tenant_pinned) and run with execute_core.
    Statements are immutable and safe to share between threads; building one costs more than
    running it, and an outcome writes one of a handful of key sets.
    """
    cache_key = (model.__tablename__, *keys)
    statement = _statement_cache.get(cache_key)
    if statement is not None:
        return statement
    table = cast(Table, model.__table__)
    values: dict[str, Any] = {key: bindparam(f"set_{key}", type_=table.c[key].type) for key in keys}
    criteria = [table.c.id == bindparam("row_id")]
    if model is Message and "status" in values:
        # A delivery receipt may have landed between the send and this write: never lower it.
        values["status"] = status_not_lowered(table.c.status, values["status"])
    if model is CampaignLead:
        criteria.append(table.c.lease_owner == bindparam("lease_owner"))
        for counter in ("cost_microusd", "input_tokens", "output_tokens"):
            values[counter] = table.c[counter] + bindparam(f"add_{counter}", type_=table.c[counter].type)
    statement = tenant_pinned(update(table).where(*criteria).values(values))
    with _statement_lock:
        _statement_cache[cache_key] = statement
    return statement


_campaigns = cast(Table, Campaign.__table__)
_COUNT_PROVIDER_FAILURE = tenant_pinned(
    update(_campaigns)
    .where(_campaigns.c.id == bindparam("row_id"))
    .values(consecutive_provider_failures=_campaigns.c.consecutive_provider_failures + 1)
    .returning(_campaigns.c.consecutive_provider_failures)
)
# Only a campaign with failures counted is written: a success costs no lock on the campaign row.
_RESET_PROVIDER_FAILURES = tenant_pinned(
    update(_campaigns)
    .where(_campaigns.c.id == bindparam("row_id"), _campaigns.c.consecutive_provider_failures != 0)
    .values(consecutive_provider_failures=0)
)


def _record_provider_health(session: Session, outcome: Outcome) -> None:
    """Pause on an account refusal; count a provider failure (pausing at the threshold) or reset.

    The count lives on the campaign row, so it is consecutive across every worker.
    """
    if outcome.pause_reason:
        pause_campaign_in(session, outcome.campaign_id, outcome.pause_reason)
        return
    if outcome.provider_failure:
        failures = execute_core(session, _COUNT_PROVIDER_FAILURE, {"row_id": outcome.campaign_id}).scalar()
        if outcome.failure_threshold and failures is not None and failures >= outcome.failure_threshold:
            last = redact_secrets(outcome.provider_failure)
            pause_campaign_in(
                session,
                outcome.campaign_id,
                f"paused after {failures} provider failures in a row (the last: {last}); "
                "check the provider's status and settings, then resume the campaign",
            )
    elif outcome.provider_ok:
        execute_core(session, _RESET_PROVIDER_FAILURES, {"row_id": outcome.campaign_id})


def _update_params(values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**{f"set_{key}": value for key, value in values.items()}, **extra}


def persist_outcome(db: Database, outcome: Outcome) -> bool:
    """One transaction: ledger update, enrolment (lease-checked), suppression, events, model calls.

    Returns False when the lease was no longer ours (the enrolment was left alone).
    """
    # The last stop before people read these texts: no provider account id or credential
    # gets through, whatever an adapter or a crash let slip.
    outcome = redact_messages_in(outcome)
    with db.session(tenant_id=outcome.tenant_id) as session, session.begin():
        return _write_outcome(session, outcome)


def _write_outcome(session: Session, outcome: Outcome) -> bool:
    calls: list[ModelCallRecord] = outcome.llm_calls
    cost = sum(c.cost_microusd for c in calls)
    input_tokens = sum(c.input_tokens for c in calls)
    output_tokens = sum(c.output_tokens for c in calls)
    # The campaign row first: cancelling a campaign locks it before its leads, so the same order
    # here cannot deadlock with it.
    _record_provider_health(session, outcome)
    if outcome.message_id is not None and outcome.message_values:
        # The ledger always records what the provider did, lease or no lease.
        message_values = outcome.message_values
        execute_core(
            session,
            _cached_update(Message, tuple(sorted(message_values))),
            _update_params(message_values, row_id=outcome.message_id),
        )
        _emit_message_event(session, outcome, message_values)
    owned = False
    if outcome.status is not None:
        values = {
            **outcome.values,
            "status": outcome.status,
            "lease_owner": None,
            "lease_expires_at": None,
            "trace_id": outcome.trace_id,
        }
        statement = _cached_update(CampaignLead, tuple(sorted(values)))
        owned = bool(
            _rowcount(
                execute_core(
                    session,
                    statement,
                    _update_params(
                        values,
                        row_id=outcome.campaign_lead_id,
                        lease_owner=outcome.lease_owner,
                        add_cost_microusd=cost,
                        add_input_tokens=input_tokens,
                        add_output_tokens=output_tokens,
                    ),
                )
            )
        )
    if outcome.suppress:
        suppress_address(
            session,
            tenant_id=outcome.tenant_id,
            channel=outcome.suppress["channel"],
            address=outcome.suppress["address"],
            reason=SuppressionReason(outcome.suppress["reason"]),
            source=outcome.suppress["source"],
        )
    _insert_events(session, outcome, lease_lost=outcome.status is not None and not owned)
    if calls:
        execute_core(
            session,
            _INSERT_LLM_CALLS,
            [
                {
                    "tenant_id": outcome.tenant_id,
                    "campaign_id": outcome.campaign_id,
                    "campaign_lead_id": outcome.campaign_lead_id,
                    "node": c.node,
                    "provider": c.provider,
                    "model": c.model,
                    "input_tokens": c.input_tokens,
                    "output_tokens": c.output_tokens,
                    "cost_microusd": c.cost_microusd,
                    "latency_ms": c.latency_ms,
                    "error": c.error,
                }
                for c in calls
            ],
        )
    return owned or outcome.status is None


_FINAL = frozenset(s.value for s in FINAL_ENROLMENT_STATUSES)


def _emit_message_event(session: Session, outcome: Outcome, message_values: dict[str, Any]) -> None:
    """`message.sent` for a send the provider took; `message.failed` for a failure that ends the
    step (a refusal the lead is tried again after is not one: its retry may still send)."""
    status = message_values.get("status")
    if status == MessageStatus.sent.value:
        kind = EventType.message_sent
    elif status == MessageStatus.failed.value and outcome.status in _FINAL:
        kind = EventType.message_failed
    else:
        return
    assert outcome.message_id is not None
    emit(session, outcome.tenant_id, kind, message_data(session, outcome.message_id))


def _insert_events(session: Session, outcome: Outcome, *, lease_lost: bool) -> None:
    rows = [
        {
            "tenant_id": outcome.tenant_id,
            "campaign_id": outcome.campaign_id,
            "campaign_lead_id": outcome.campaign_lead_id,
            "trace_id": outcome.trace_id,
            "node": e["node"],
            "level": e["level"],
            "message": e["message"],
            "data": e["data"],
            "created_at": e["created_at"],
        }
        for e in outcome.events
    ]
    if lease_lost:
        last = outcome.events[-1]["created_at"] if outcome.events else utcnow()
        rows.append(
            {
                "tenant_id": outcome.tenant_id,
                "campaign_id": outcome.campaign_id,
                "campaign_lead_id": outcome.campaign_lead_id,
                "trace_id": outcome.trace_id,
                "node": "finalize",
                "level": "warning",
                "message": "the lease expired before the run ended: its outcome was not written",
                "data": {"discarded_status": outcome.status},
                "created_at": last,
            }
        )
    if rows:
        execute_core(session, _INSERT_EVENTS, rows)
