"""Where lead errors, events, the ledger and campaign reasons are stored, no account id gets through."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.channels.base import NotSent, OutgoingMessage, SendReceipt
from core.lifecycle import pause_campaign_in
from core.models import AuditLog, Campaign
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from tests.core.pipeline.conftest import WORKER, Seed

ACCOUNT_SID = "AC" + "3f9a0c1d7e" * 3 + "b2"


class LeakingSender:
    """A provider adapter that lets the raw error through, as a new or careless adapter might."""

    name = "twilio"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def send(self, message: OutgoingMessage) -> SendReceipt:
        raise self.error

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"POST https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json: reset"),
        NotSent(f"account {ACCOUNT_SID} suspended", permanent=True),
    ],
)
def test_lead_errors_events_and_the_ledger_are_stored_without_account_ids(
    seed: Seed, runtime: PipelineRuntime, error: Exception
) -> None:
    runtime.senders = {"sms": LeakingSender(error)}
    cl = seed.enrol()
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) in ("unknown", "failed")
    enrolment = seed.enrolment(cl)
    [message] = seed.messages(cl)
    shown = [enrolment.error, enrolment.status_reason, message.error]
    shown += [event.message for event in seed.events(cl)]
    assert enrolment.error and "[redacted]" in enrolment.error
    assert not [text for text in shown if text and ACCOUNT_SID.lower() in text.lower()]


def test_a_campaign_paused_with_a_provider_error_shows_it_without_the_account_id(seed: Seed) -> None:
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        assert pause_campaign_in(session, seed.campaign_id, f"Twilio 401 for /Accounts/{ACCOUNT_SID}")
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, seed.campaign_id)
        audit = session.scalars(select(AuditLog.details).where(AuditLog.action == "pause")).one()
    assert campaign is not None and campaign.status_reason == "Twilio 401 for /Accounts/[redacted]"
    assert ACCOUNT_SID not in str(audit)
