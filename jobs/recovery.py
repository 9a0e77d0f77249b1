"""Recovery after a crash: ledger rows left `sending` are reconciled, expired leases go back to pending.

Order matters: a lead's `sending` row is reconciled first (the outbox exactly, other providers to
`unknown` for a person to check), and only then does a still-`in_progress` lead whose lease has
expired go back to `pending`, so nothing is re-sent blindly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from core.db import Database
from core.lifecycle import enrolments_in_lock_order, lease_exhausted_values, lease_returned_values
from core.logs import get_logger
from core.metrics import LEASES_RECOVERED, SENDS_RECONCILED
from core.models import CampaignLead, EnrolmentStatus, Message, MessageStatus

log = get_logger(__name__)

ReconcileFn = Callable[[int], str]


@dataclass(frozen=True)
class RecoveryReport:
    reconciled: dict[str, int]
    returned_to_pending: int
    failed_after_attempts: int


def stranded_sending_messages(db: Database, *, now: datetime, lease_seconds: float) -> list[int]:
    """Ledger rows still `sending` that no live worker can still be sending.

    Either the lead's lease has expired (its worker died), or the lease was taken away (the
    campaign was cancelled) and the row is older than a lease, so any send that was under way
    has ended one way or the other.
    """
    with db.session(system=True, read_only=True) as session:
        return list(
            session.scalars(
                select(Message.id)
                .join(CampaignLead, CampaignLead.id == Message.campaign_lead_id)
                .where(
                    Message.status == MessageStatus.sending.value,
                    or_(CampaignLead.lease_expires_at <= now,
                        and_(CampaignLead.lease_expires_at.is_(None),
                             Message.created_at <= now - timedelta(seconds=lease_seconds))),
                )
                .order_by(Message.id)
            )
        )


def recover_expired_leases(
    db: Database, *, now: datetime, reconcile: ReconcileFn, max_attempts: int,
    lease_seconds: float,
) -> RecoveryReport:
    """Reconcile stranded sends, then free the expired leases (failing leads out of attempts)."""
    reconciled: dict[str, int] = {}
    for message_id in stranded_sending_messages(db, now=now, lease_seconds=lease_seconds):
        try:
            outcome = reconcile(message_id)
        except Exception:
            # One row that cannot be reconciled must not stop the others; it is tried again
            # at the next tick and its lead stays held until then.
            log.exception("reconcile_failed", message_id=message_id)
            continue
        reconciled[outcome] = reconciled.get(outcome, 0) + 1
        SENDS_RECONCILED.labels(outcome).inc()
    expired = (CampaignLead.status == EnrolmentStatus.in_progress.value,
               CampaignLead.lease_expires_at <= now)
    out_of_attempts = CampaignLead.attempts >= max_attempts
    with db.session(system=True) as session, session.begin():
        failed = session.scalars(
            update(CampaignLead)
            .where(CampaignLead.id.in_(enrolments_in_lock_order(*expired, out_of_attempts)))
            .values(**lease_exhausted_values(now, max_attempts))
            .returning(CampaignLead.id)
            .execution_options(synchronize_session=False)
        ).all()
        returned = session.scalars(
            update(CampaignLead)
            .where(CampaignLead.id.in_(enrolments_in_lock_order(*expired)))
            .values(**lease_returned_values(now))
            .returning(CampaignLead.id)
            .execution_options(synchronize_session=False)
        ).all()
    if returned:
        LEASES_RECOVERED.labels("returned").inc(len(returned))
    if failed:
        LEASES_RECOVERED.labels("failed").inc(len(failed))
    if reconciled or returned or failed:
        log.info("leases_recovered", reconciled=reconciled, returned=len(returned),
                 failed=len(failed))
    return RecoveryReport(reconciled, len(returned), len(failed))
