"""The send ledger's row for a run's step, committed as `sending` before any provider is called.

One checked INSERT writes it only while the lease is ours and the address is not suppressed;
the outcome's write (core.pipeline.store.persist_outcome) later marks it with what the provider did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.compliance.frequency import CapHold, ContactCaps, cap_hold, lock_lead
from core.compliance.suppression import suppression_reason
from core.db import Database, execute_core
from core.errors import Conflict
from core.models import CampaignLead, Message, MessageStatus, Suppression

NOT_REACHED = "never reached the provider"


@dataclass(frozen=True)
class LedgerEntry:
    """The outcome of writing the ledger row: go ahead and send, or why not."""

    message_id: int | None
    proceed: bool
    existing_status: str | None = None
    suppressed: str | None = None
    lease_lost: bool = False
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


def _ledger_insert(dialect: str) -> Any:
    """INSERT the ledger row only while the lease is ours and the address is not suppressed.

    One statement does the three checks and the write; ON CONFLICT DO NOTHING turns a second
    row for the same step (or key) into "no row", never an exception.
    """
    table = cast(Table, Message.__table__)
    row = select(*[bindparam(name, type_=table.c[name].type) for name in _LEDGER_COLUMNS]).where(
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
        .from_select([table.c[name] for name in _LEDGER_COLUMNS], row)
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )


_LEDGER_INSERTS = {"sqlite": _ledger_insert("sqlite"), "postgresql": _ledger_insert("postgresql")}


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
    caps: ContactCaps | None = None,
) -> LedgerEntry:
    """Commit the `sending` row (suppression and lease checked in the same statement).

    With `caps`, the lead is locked and its recent messages counted in the same transaction
    first: a lead over a cap gets no row (`capped` says until when), and two workers
    sending to one lead at once cannot both pass the count.

    The caller calls the provider only after this commits, and marks the row with what the
    provider did in the outcome's write (persist_outcome): the same for every provider.
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
    with db.session(tenant_id=tenant_id) as session, session.begin():
        if capped := _cap_refusal(session, caps, params, dialect=dialect, now=now):
            return capped
        message_id = execute_core(session, _LEDGER_INSERTS[dialect], params).scalar()
        if message_id is None:
            return _ledger_refusal(session, params)
        return LedgerEntry(message_id, proceed=True)


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

