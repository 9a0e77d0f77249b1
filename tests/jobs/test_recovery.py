"""Recovery: stranded `sending` rows are reconciled, expired leases go back to pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from core.campaign_runs import cancel_campaign
from core.config import Settings
from core.db import Database
from core.models import CampaignLead, Message, OutboxMessage
from core.pipeline.service import PipelineRuntime, reconcile_sending_message
from jobs.claims import claim_due_enrolments
from jobs.recovery import RecoveryReport, recover_expired_leases
from tests.jobs.conftest import CampaignMaker, RunningCampaign


def _recover(db: Database, settings: Settings, now: datetime, max_attempts: int = 5) -> RecoveryReport:
    runtime = PipelineRuntime.from_settings(settings, db)
    return recover_expired_leases(
        db, now=now, max_attempts=max_attempts, lease_seconds=settings.lease_seconds,
        reconcile=lambda message_id: reconcile_sending_message(db, runtime, message_id))


def _sending(db: Database, campaign: RunningCampaign, lead_row: CampaignLead, *, provider: str,
             in_outbox: bool) -> None:
    key = f"lead-{lead_row.id}-step-0"
    with db.session(tenant_id=campaign.actor.tenant_id) as session, session.begin():
        session.add(Message(campaign_id=campaign.campaign_id, campaign_lead_id=lead_row.id,
                            lead_id=lead_row.lead_id, step=0, channel="sms", to_address="+12025550100",
                            body="Hello", provider=provider, status="sending", idempotency_key=key))
        if in_outbox:
            session.add(OutboxMessage(idempotency_key=key, channel="sms", to_address="+12025550100",
                                      body="Hello"))


@pytest.fixture
def dead_worker_campaign(
    runner_db: Database, running_campaign: CampaignMaker
) -> tuple[RunningCampaign, list[CampaignLead]]:
    campaign = running_campaign(5)
    claim_due_enrolments(runner_db, worker_id="dead", limit=5, now=datetime.now(UTC), lease_seconds=1)
    with runner_db.session(system=True, read_only=True) as session:
        rows = list(session.scalars(select(CampaignLead).order_by(CampaignLead.id)))
    return campaign, rows


def _lead(db: Database, lead_row_id: int) -> CampaignLead:
    with db.session(system=True, read_only=True) as session:
        row = session.get(CampaignLead, lead_row_id)
        assert row is not None
        return row


def _message_status(db: Database, lead_row_id: int) -> str | None:
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(Message.status).where(Message.campaign_lead_id == lead_row_id))


def test_a_dead_workers_leads_are_reconciled_then_returned(
    runner_db: Database, runner_settings: Settings,
    dead_worker_campaign: tuple[RunningCampaign, list[CampaignLead]],
) -> None:
    campaign, rows = dead_worker_campaign
    delivered, interrupted, unknowable, untouched, worn_out = rows
    _sending(runner_db, campaign, delivered, provider="outbox", in_outbox=True)
    _sending(runner_db, campaign, interrupted, provider="outbox", in_outbox=False)
    _sending(runner_db, campaign, unknowable, provider="twilio", in_outbox=False)
    with runner_db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id == worn_out.id).values(attempts=5))

    report = _recover(runner_db, runner_settings, datetime.now(UTC) + timedelta(seconds=10))

    assert report.reconciled == {"sent": 1, "failed": 1, "unknown": 1}
    def outcome(row: CampaignLead) -> tuple[str | None, str]:
        return _message_status(runner_db, row.id), _lead(runner_db, row.id).status

    assert outcome(delivered) == ("sent", "sent")
    # The outbox never got it: safe to try again, through the same ledger row.
    assert outcome(interrupted) == ("failed", "pending")
    # Twilio cannot be asked: a person must check; never re-sent blindly.
    assert outcome(unknowable) == ("unknown", "unknown")
    returned = _lead(runner_db, untouched.id)
    assert (returned.status, returned.lease_owner, returned.lease_expires_at) == ("pending", None, None)
    failed = _lead(runner_db, worn_out.id)
    assert failed.status == "failed" and "stopped 5 times" in (failed.error or "")
    assert (report.returned_to_pending, report.failed_after_attempts) == (1, 1)


def test_a_live_lease_is_left_alone(runner_db: Database, runner_settings: Settings,
                                    running_campaign: CampaignMaker) -> None:
    campaign = running_campaign(2)
    now = datetime.now(UTC)
    claim_due_enrolments(runner_db, worker_id="alive", limit=2, now=now, lease_seconds=60)
    with runner_db.session(system=True, read_only=True) as session:
        row = session.scalars(select(CampaignLead)).first()
    assert row is not None
    _sending(runner_db, campaign, row, provider="twilio", in_outbox=False)

    report = _recover(runner_db, runner_settings, now + timedelta(seconds=30))

    assert report == RecoveryReport({}, 0, 0)
    assert (_message_status(runner_db, row.id), _lead(runner_db, row.id).status) == ("sending", "in_progress")


def test_a_send_under_way_when_the_campaign_was_cancelled_waits_one_lease(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(1)
    now = datetime.now(UTC)
    claim_due_enrolments(runner_db, worker_id="alive", limit=1, now=now, lease_seconds=60)
    with runner_db.session(system=True, read_only=True) as session:
        row = session.scalars(select(CampaignLead)).one()
    _sending(runner_db, campaign, row, provider="twilio", in_outbox=False)
    cancel_campaign(runner_db, campaign.actor, campaign.campaign_id)
    # The clock is the ledger row's own, not the wall's: on a loaded machine the cancel
    # alone can take longer than the test's 2 s lease.
    with runner_db.session(system=True, read_only=True) as session:
        sent_at = session.scalars(select(Message.created_at)).one()
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    lease = timedelta(seconds=runner_settings.lease_seconds)

    assert _recover(runner_db, runner_settings, sent_at + lease / 2).reconciled == {}
    later = sent_at + lease + timedelta(seconds=1)
    assert _recover(runner_db, runner_settings, later).reconciled == {"unknown": 1}
    assert _lead(runner_db, row.id).status == "cancelled"
