"""The pipeline's database work, kept to a few short transactions per lead.

A run reads its inputs once, writes the ledger row before the provider is called (the outbox,
a table of this database, is written in that same transaction), and writes the outcome, the
events and the model calls in one transaction at the end. Every write of an outcome is guarded
by the lease (`lease_owner`), so a worker whose lease expired cannot overwrite the work of the
one that took over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import (
    CursorResult,
    Result,
    Table,
    bindparam,
    case,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction

from core.campaigns import pause_campaign_in
from core.channels.base import redact_messages_in, redact_secrets
from core.channels.receipts import status_not_lowered
from core.compliance.frequency import CapHold, ContactCaps, cap_hold, lock_lead
from core.compliance.suppression import suppress_address, suppression_reason
from core.db import Database, execute_core, tenant_pinned
from core.errors import Conflict
from core.llm.records import ModelCallRecord
from core.models import (
    Campaign,
    CampaignLead,
    Event,
    Lead,
    LLMCall,
    Message,
    MessageStatus,
    Suppression,
    SuppressionReason,
    Tenant,
    utcnow,
)
from core.pipeline.state import CampaignData, EnrolmentData, PipelineEvent, TenantData

NOT_REACHED = "never reached the provider"

LEAD_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "title",
    "website",
    "industry",
    "city",
    "country",
    "time_zone",
    "notes",
    "custom_fields",
    "opted_out_at",
    "replied_at",
)


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
class RunInputs:
    tenant: TenantData
    campaign: CampaignData
    lead: dict[str, Any]
    enrolment: EnrolmentData


def tenant_data(tenant: Tenant) -> TenantData:
    return TenantData(
        id=tenant.id,
        name=tenant.name,
        default_country=tenant.default_country,
        quiet_hours_start=tenant.quiet_hours_start,
        quiet_hours_end=tenant.quiet_hours_end,
        weekdays_only=tenant.weekdays_only,
        sms_sender_id=tenant.sms_sender_id,
        email_sender=tenant.email_sender,
        postal_address=tenant.postal_address,
        link_allow_list=tuple(tenant.link_allow_list or ()),
        playbook=dict(tenant.playbook or {}),
        price_overrides=dict(tenant.price_overrides or {}),
        time_zone=tenant.time_zone,
        contact_cap_per_day=tenant.contact_cap_per_day,
        contact_cap_per_week=tenant.contact_cap_per_week,
        skip_public_holidays=tenant.skip_public_holidays,
        holiday_country=tenant.holiday_country,
    )


def campaign_data(campaign: Campaign) -> CampaignData:
    return CampaignData(
        id=campaign.id,
        tenant_id=campaign.tenant_id,
        name=campaign.name,
        channel=campaign.channel,
        status=campaign.status,
        system_prompt=campaign.system_prompt,
        variants=list(campaign.variants or []),
        model=campaign.model,
        temperature=campaign.temperature,
        steps=list(campaign.steps or []),
        research_web=campaign.research_web,
        max_sms_segments=campaign.max_sms_segments,
        quiet_hours=campaign.quiet_hours,
        approval_required=campaign.approval_required,
    )


def lead_data(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in LEAD_FIELDS}


def address_of(lead: dict[str, Any], channel: str) -> str | None:
    return lead.get("phone") if channel == "sms" else lead.get("email")


_TENANT_COLUMNS = {
    "id": Tenant.id,
    "name": Tenant.name,
    "default_country": Tenant.default_country,
    "quiet_hours_start": Tenant.quiet_hours_start,
    "quiet_hours_end": Tenant.quiet_hours_end,
    "weekdays_only": Tenant.weekdays_only,
    "sms_sender_id": Tenant.sms_sender_id,
    "email_sender": Tenant.email_sender,
    "postal_address": Tenant.postal_address,
    "link_allow_list": Tenant.link_allow_list,
    "playbook": Tenant.playbook,
    "price_overrides": Tenant.price_overrides,
    "time_zone": Tenant.time_zone,
    "contact_cap_per_day": Tenant.contact_cap_per_day,
    "contact_cap_per_week": Tenant.contact_cap_per_week,
    "skip_public_holidays": Tenant.skip_public_holidays,
    "holiday_country": Tenant.holiday_country,
}
_CAMPAIGN_COLUMNS = {
    "id": Campaign.id,
    "tenant_id": Campaign.tenant_id,
    "name": Campaign.name,
    "channel": Campaign.channel,
    "status": Campaign.status,
    "system_prompt": Campaign.system_prompt,
    "variants": Campaign.variants,
    "model": Campaign.model,
    "temperature": Campaign.temperature,
    "steps": Campaign.steps,
    "research_web": Campaign.research_web,
    "max_sms_segments": Campaign.max_sms_segments,
    "quiet_hours": Campaign.quiet_hours,
    "approval_required": Campaign.approval_required,
}
_ENROLMENT_COLUMNS = {
    "id": CampaignLead.id,
    "step": CampaignLead.step,
    "variant": CampaignLead.variant,
    "attempts": CampaignLead.attempts,
    "approved_at": CampaignLead.approved_at,
    "draft_subject": CampaignLead.draft_subject,
    "draft_body": CampaignLead.draft_body,
    "research": CampaignLead.research,
    "guard_result": CampaignLead.guard_result,
    "replied_at": CampaignLead.replied_at,
    "trace_id": CampaignLead.trace_id,
}
_LEAD_COLUMNS = {name: getattr(Lead, name) for name in LEAD_FIELDS}
_GROUPS = {"t": _TENANT_COLUMNS, "c": _CAMPAIGN_COLUMNS, "e": _ENROLMENT_COLUMNS, "l": _LEAD_COLUMNS}


def _run_inputs_query() -> Any:
    # Columns, not entities: a run needs plain values, and loading entities (with the lead's
    # tags relationship) costs more than the rest of the read. Built once, with bound
    # parameters: constructing a select of fifty columns costs more than running it. It is
    # read in a system session (see load_run_inputs), so it is written on the tables: the ORM's
    # per-execution set-up of a statement and its rows would only add time.
    enrolments, leads = CampaignLead.__table__, Lead.__table__
    campaigns, tenants, suppressions = Campaign.__table__, Tenant.__table__, Suppression.__table__
    suppression = (
        select(suppressions.c.reason)
        .where(
            suppressions.c.tenant_id == enrolments.c.tenant_id,
            suppressions.c.channel == campaigns.c.channel,
            suppressions.c.address
            == case((campaigns.c.channel == "sms", leads.c.phone), else_=leads.c.email),
        )
        .limit(1)
        .scalar_subquery()
    )
    columns = [
        column.table.c[column.key].label(f"{prefix}_{name}")
        for prefix, group in _GROUPS.items()
        for name, column in group.items()
    ]
    return (
        select(*columns, suppression.label("suppression"))
        .join_from(
            enrolments,
            leads,
            (leads.c.id == enrolments.c.lead_id) & (leads.c.tenant_id == enrolments.c.tenant_id),
        )
        .join(
            campaigns,
            (campaigns.c.id == enrolments.c.campaign_id) & (campaigns.c.tenant_id == enrolments.c.tenant_id),
        )
        .join(tenants, tenants.c.id == enrolments.c.tenant_id)
        .where(
            enrolments.c.id == bindparam("campaign_lead_id"),
            enrolments.c.lease_owner == bindparam("lease_owner"),
        )
    )


_RUN_INPUTS = _run_inputs_query()


def load_run_inputs(db: Database, campaign_lead_id: int, *, lease_owner: str) -> RunInputs | None:
    """Everything one run reads, in one query; None when the lease is not ours.

    This is the runner's claimed unit of work, known by id only, so it is read in a system
    session; every join pins the rows to the enrolment's tenant.
    """
    with db.session(system=True, read_only=True) as session:
        row = (
            execute_core(
                session, _RUN_INPUTS, {"campaign_lead_id": campaign_lead_id, "lease_owner": lease_owner}
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            return None
        values = {
            prefix: {name: row[f"{prefix}_{name}"] for name in group} for prefix, group in _GROUPS.items()
        }
        enrolment = values["e"]
        earlier: list[dict[str, Any]] = []
        if enrolment["step"] > 0:
            earlier = [
                {"step": step, "subject": subject, "body": body}
                for step, subject, body in session.execute(
                    select(Message.step, Message.subject, Message.body)
                    .where(
                        Message.campaign_lead_id == enrolment["id"],
                        Message.tenant_id == values["t"]["id"],
                        Message.step < enrolment["step"],
                    )
                    .order_by(Message.step)
                )
            ]
    tenant = values["t"]
    campaign = values["c"]
    return RunInputs(
        tenant=TenantData(
            **{
                **tenant,
                "link_allow_list": tuple(tenant["link_allow_list"] or ()),
                "playbook": dict(tenant["playbook"] or {}),
                "price_overrides": dict(tenant["price_overrides"] or {}),
            }
        ),
        campaign=CampaignData(
            **{
                **campaign,
                "variants": list(campaign["variants"] or []),
                "steps": list(campaign["steps"] or []),
            }
        ),
        lead=values["l"],
        enrolment=EnrolmentData(
            **{
                **enrolment,
                "research": list(enrolment["research"] or []),
                "guard_result": dict(enrolment["guard_result"] or {}),
            },
            earlier_messages=earlier,
            suppression=row["suppression"],
        ),
    )


class HeldWrite:
    """A transaction begun by the send node and committed by finalize's outcome write.

    The outbox delivery, its ledger row and the outcome then commit together or not at all.
    `release` rolls it back if it was never committed (a run that crashed in between).
    """

    def __init__(self, session: Session, transaction: SessionTransaction) -> None:
        self.session = session
        self.transaction = transaction

    def commit(self) -> None:
        self.transaction.commit()

    def release(self) -> None:
        self.session.close()  # rolls back whatever was not committed


@dataclass(frozen=True)
class LedgerEntry:
    """The outcome of writing the ledger row: go ahead and send, or why not."""

    message_id: int | None
    proceed: bool
    existing_status: str | None = None
    suppressed: str | None = None
    lease_lost: bool = False
    # Set when the message was delivered in the ledger's own transaction (the outbox).
    provider_message_id: str | None = None
    held: HeldWrite | None = None  # that transaction, still open, for the outcome to commit
    capped: CapHold | None = None  # the lead's contact caps hold the send back


_LEDGER_COLUMNS = (
    "tenant_id",
    "campaign_id",
    "campaign_lead_id",
    "lead_id",
    "step",
    "channel",
    "to_address",
    "subject",
    "body",
    "segments",
    "provider",
    "status",
    "idempotency_key",
    "created_at",
)


# A message delivered in the ledger's own transaction (the outbox) is written already sent.
_SENT_LEDGER_COLUMNS = (*_LEDGER_COLUMNS, "provider_message_id", "sent_at")


def _ledger_insert(dialect: str, columns: tuple[str, ...] = _LEDGER_COLUMNS) -> Any:
    """INSERT the ledger row only while the lease is ours and the address is not suppressed.

    One statement does the three checks and the write; ON CONFLICT DO NOTHING turns a second
    row for the same step (or key) into "no row", never an exception.
    """
    table = cast(Table, Message.__table__)
    row = select(*[bindparam(name, type_=table.c[name].type) for name in columns]).where(
        exists().where(
            CampaignLead.id == bindparam("campaign_lead_id"),
            CampaignLead.tenant_id == bindparam("tenant_id"),
            CampaignLead.lease_owner == bindparam("lease_owner"),
        ),
        ~exists().where(
            Suppression.tenant_id == bindparam("tenant_id"),
            Suppression.channel == bindparam("channel"),
            Suppression.address == bindparam("to_address"),
        ),
    )
    make_insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        make_insert(table)
        .from_select([table.c[name] for name in columns], row)
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )


_LEDGER_INSERTS = {"sqlite": _ledger_insert("sqlite"), "postgresql": _ledger_insert("postgresql")}
_SENT_LEDGER_INSERTS = {
    dialect: _ledger_insert(dialect, _SENT_LEDGER_COLUMNS) for dialect in ("sqlite", "postgresql")
}


def write_ledger_row(
    db: Database,
    *,
    tenant_id: int,
    campaign_id: int,
    campaign_lead_id: int,
    lead_id: int,
    lease_owner: str,
    step: int,
    channel: str,
    to_address: str,
    subject: str | None,
    body: str,
    segments: int,
    provider: str,
    idempotency_key: str,
    now: datetime,
    deliver: Callable[[Session], str] | None = None,
    caps: ContactCaps | None = None,
) -> LedgerEntry:
    """Commit the `sending` row (suppression and lease checked in the same statement).

    With `caps`, the lead is locked and its recent messages counted in the same transaction
    first: a lead over a cap gets no row (`capped` says until when), and two workers
    sending to one lead at once cannot both pass the count.

    With `deliver` (a provider that is a table of this database: the outbox), the message is
    delivered in the same transaction and the row is committed as `sent` with the provider id
    `deliver` returns: the delivery and the ledger's record of it commit together or not at all.
    When the checks refuse the row, the delivery is rolled back and the refusal is worked out
    (or a row that never reached a provider reused) as without `deliver`. A delivery's
    transaction is returned open (`LedgerEntry.held`) for the outcome to join and commit.
    """
    params = {
        "tenant_id": tenant_id,
        "campaign_id": campaign_id,
        "campaign_lead_id": campaign_lead_id,
        "lead_id": lead_id,
        "step": step,
        "channel": channel,
        "to_address": to_address,
        "subject": subject,
        "body": body,
        "segments": segments,
        "provider": provider,
        "status": MessageStatus.sending.value,
        "idempotency_key": idempotency_key,
        "created_at": now,
        "lease_owner": lease_owner,
    }
    dialect = db.engine.dialect.name
    if deliver is not None:
        # Delivered first, then the row written `sent` by the same checked INSERT: when the
        # checks refuse it, the transaction is rolled back and the delivery with it.
        session = db.session(tenant_id=tenant_id)
        held = HeldWrite(session, session.begin())
        handed_over = False  # once handed over, the caller commits or releases it
        try:
            if capped := _cap_refusal(session, caps, params, dialect=dialect, now=now):
                return capped
            provider_message_id = deliver(session)
            message_id = execute_core(
                session,
                _SENT_LEDGER_INSERTS[dialect],
                {
                    **params,
                    "status": MessageStatus.sent.value,
                    "provider_message_id": provider_message_id,
                    "sent_at": now,
                },
            ).scalar()
            if message_id is not None:
                handed_over = True
                return LedgerEntry(
                    message_id, proceed=True, provider_message_id=provider_message_id, held=held
                )
        finally:
            if not handed_over:
                held.release()
    with db.session(tenant_id=tenant_id) as session, session.begin():
        if capped := _cap_refusal(session, caps, params, dialect=dialect, now=now):
            return capped
        message_id = execute_core(session, _LEDGER_INSERTS[dialect], params).scalar()
        if message_id is None:
            refused = _ledger_refusal(session, params)
            if not refused.proceed:
                return refused
            message_id = refused.message_id
        if deliver is None:
            return LedgerEntry(message_id, proceed=True)
        provider_message_id = deliver(session)
        sent = {
            "status": MessageStatus.sent.value,
            "error": None,
            "provider_message_id": provider_message_id,
            "sent_at": now,
        }
        execute_core(
            session, _cached_update(Message, tuple(sorted(sent))), _update_params(sent, row_id=message_id)
        )
        return LedgerEntry(message_id, proceed=True, provider_message_id=provider_message_id)


def _cap_refusal(
    session: Session, caps: ContactCaps | None, params: dict[str, Any], *, dialect: str, now: datetime
) -> LedgerEntry | None:
    """Lock the lead and count its recent messages; a refusal when one more would break a cap."""
    if caps is None or not caps.active:
        return None
    lock_lead(session, params["lead_id"], dialect=dialect)
    this_step = (params["campaign_lead_id"], params["step"])
    hold = cap_hold(session, caps, lead_id=params["lead_id"], now=now, excluding=this_step)
    return None if hold is None else LedgerEntry(None, proceed=False, capped=hold)


def _ledger_refusal(session: Session, params: dict[str, Any]) -> LedgerEntry:
    """Nothing was inserted: find out which check stopped it (a rare path, so plain queries).

    `params` are those the checked INSERT was given.
    """
    if (
        session.scalar(
            select(CampaignLead.id).where(
                CampaignLead.id == params["campaign_lead_id"],
                CampaignLead.lease_owner == params["lease_owner"],
            )
        )
        is None
    ):
        return LedgerEntry(None, proceed=False, lease_lost=True)
    reason = suppression_reason(session, channel=params["channel"], address=params["to_address"])
    if reason is not None:
        return LedgerEntry(None, proceed=False, suppressed=reason)
    existing = session.execute(
        select(Message.id, Message.status).where(
            Message.campaign_lead_id == params["campaign_lead_id"], Message.step == params["step"]
        )
    ).one_or_none()
    if existing is None:
        raise Conflict(f"the idempotency key {params['idempotency_key']} is already used by another message")
    message_id, status = existing
    if status == MessageStatus.failed.value:
        # A failed row was certainly not sent: the provider refused it (a NotSent or an account
        # refusal) or never got it (reconciled as never reached). The lead is being tried again
        # (a transient refusal, or failed leads put back by a person): reuse its row.
        reused = ("body", "subject", "segments", "provider", "to_address", "created_at")
        session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=MessageStatus.sending.value, error=None, **{k: params[k] for k in reused})
            .execution_options(synchronize_session=False)
        )
        return LedgerEntry(message_id, proceed=True)
    return LedgerEntry(message_id, proceed=False, existing_status=status)


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


def persist_outcome(db: Database, outcome: Outcome, *, held: HeldWrite | None = None) -> bool:
    """One transaction: ledger update, enrolment (lease-checked), suppression, events, model calls.

    With `held` (the send node's open transaction), the outcome is written in it and committed
    with it; it is released either way. Returns False when the lease was no longer ours (the
    enrolment was left alone).
    """
    # The last stop before people read these texts: no provider account id or credential
    # gets through, whatever an adapter or a crash let slip.
    outcome = redact_messages_in(outcome)
    if held is None:
        with db.session(tenant_id=outcome.tenant_id) as session, session.begin():
            return _write_outcome(session, outcome)
    try:
        owned = _write_outcome(held.session, outcome)
        held.commit()
        return owned
    finally:
        held.release()


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
