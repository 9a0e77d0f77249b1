"""The send path refuses an unverified email sender: the campaign pauses with the reason, the lead waits."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from core.channels.base import OutgoingMessage, SendReceipt
from core.models import Campaign, LLMCall, SenderVerification
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from tests.core.pipeline.conftest import NOW, WORKER, Seed


def test_an_unverified_email_sender_pauses_the_campaign_before_any_spend(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seed.campaign(channel="email")
    seed.tenant(email_sender="Acme <sales@unproven.example>")
    cl = seed.enrol()
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "pending"
    enrolment = seed.enrolment(cl)
    assert enrolment.error is None and "sales@unproven.example is not verified" in (
        enrolment.status_reason or ""
    )
    assert seed.messages(cl) == []
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, seed.campaign_id)
        assert session.scalar(select(func.count(LLMCall.id))) == 0
    assert campaign is not None and campaign.status == "paused"
    assert "Admin > Settings" in (campaign.status_reason or "")


def test_a_sender_whose_verification_was_removed_is_refused_mid_run(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seed.campaign(channel="email")
    first, second = seed.enrol(), seed.enrol(seed.lead(email="grace@analytical.example", phone=None))
    assert process_campaign_lead(seed.db, runtime, first, lease_owner=WORKER) == "sent"
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        session.execute(delete(SenderVerification))
    assert process_campaign_lead(seed.db, runtime, second, lease_owner=WORKER) == "pending"
    assert seed.messages(second) == []


class RealEmailProvider:
    name = "smtp"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> SendReceipt:
        self.sent.append(message)
        return SendReceipt("smtp-1")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


def test_an_address_confirmed_through_the_outbox_does_not_send_through_smtp(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seed.campaign(channel="email")
    seed.tenant(email_sender="ceo@bank.example")
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        session.add(
            SenderVerification(
                tenant_id=seed.tenant_id,
                kind="address",
                value="ceo@bank.example",
                token="x",
                via="outbox",
                verified_at=NOW,
            )
        )
    provider = RealEmailProvider()
    runtime.senders = {"email": provider}
    cl = seed.enrol()
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "pending"
    assert provider.sent == [] and "through the outbox" in (seed.enrolment(cl).status_reason or "")
