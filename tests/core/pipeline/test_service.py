"""process_campaign_lead end to end on the database: every outcome, the ledger, events, costs, leases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.channels.base import NotSent, OutgoingMessage, SendReceipt
from core.channels.outbox import OutboxSender
from core.config import Settings
from core.db import Database
from core.gate import BudgetExceeded
from core.models import (
    CampaignLead,
    EnrolmentStatus,
    Lead,
    LLMCall,
    Message,
    MessageStatus,
    OutboxMessage,
    Suppression,
)
from core.pipeline.service import (
    LEASE_LOST,
    PipelineRuntime,
    process_campaign_lead,
    reconcile_sending_message,
)
from tests.core.pipeline.conftest import NOW, WORKER, Seed, scripted_runtime

GOOD_SMS = (
    "Hi Ada, quick idea for Analytical Engines. Open to a 15-minute call next week? Reply STOP to opt out"
)


def run(seed: Seed, runtime: PipelineRuntime, campaign_lead_id: int, owner: str = WORKER) -> str:
    return process_campaign_lead(seed.db, runtime, campaign_lead_id, lease_owner=owner)


def count(db: Database, tenant_id: int, column: Any) -> int:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        return session.scalar(select(func.count(column))) or 0


def test_offline_sms_is_sent_and_everything_is_recorded(seed: Seed, runtime: PipelineRuntime) -> None:
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    row = seed.enrolment(cl)
    assert (row.status, row.lease_owner, row.lease_expires_at, row.completed_at) == ("sent", None, None, NOW)
    assert "Ada" in (row.draft_body or "") and row.draft_body.endswith("Reply STOP to opt out")
    assert row.guard_result["passed"] and row.guard_result["encoding"] == "GSM-7"
    # The offline model's estimated tokens are billed at the campaign model's price (gpt-4o-mini).
    expected_cost = round(row.input_tokens * 0.15 + row.output_tokens * 0.60)
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert abs(row.cost_microusd - expected_cost) <= 1 and row.cost_microusd > 0
    assert {f["source"] for f in row.research} >= {"lead.title", "playbook"}
    [message] = seed.messages(cl)
    assert (message.status, message.step, message.to_address, message.provider) == (
        "sent",
        0,
        "+12125550101",
        "outbox",
    )
    assert message.provider_message_id.startswith("outbox-") and message.body == row.draft_body
    assert message.segments == row.guard_result["segments"]
    events = seed.events(cl)
    assert [e.node for e in events] == [
        "validate",
        "research",
        "compose",
        "guard",
        "approval",
        "send",
        "finalize",
    ]
    assert len({e.trace_id for e in events}) == 1 and events[0].trace_id == row.trace_id
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        [call] = session.scalars(select(LLMCall)).all()
    assert (call.node, call.provider, call.model, call.campaign_lead_id) == (
        "compose",
        "offline",
        "gpt-4o-mini",
        cl,
    )
    assert (call.input_tokens, call.output_tokens, call.cost_microusd) == (
        row.input_tokens,
        row.output_tokens,
        row.cost_microusd,
    )


@pytest.mark.parametrize(
    ("first", "last", "title", "company"),
    [
        ("Łukasz", "Żółćkiewicz", "Head of Procurement Operations", "Przedsiębiorstwo Handlowe Śnieżka"),
        ("Zoë", "Þórsdóttir", "Chief Commercial Officer", "Reykjavík Fiskvinnsla Ehf"),
    ],
)
def test_a_name_outside_gsm7_still_gets_a_message_within_the_segment_limit(
    seed: Seed, runtime: PipelineRuntime, first: str, last: str, title: str, company: str
) -> None:
    """UCS-2 allows 67 characters a segment: the offline model's second try must fit the limit."""
    lead_id = seed.lead(first_name=first, last_name=last, title=title, company=company)
    cl = seed.enrol(lead_id)
    assert run(seed, runtime, cl) == "sent"
    row = seed.enrolment(cl)
    assert row.guard_result["encoding"] == "UCS-2" and row.guard_result["segments"] <= 2
    assert first in (row.draft_body or "") and row.draft_body.endswith("Reply STOP to opt out")


def test_costs_and_tokens_are_summed_with_the_campaign_model_price(seed: Seed, settings: Settings) -> None:
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    row = seed.enrolment(cl)
    # Two calls (research condensation and compose), each 100 in / 20 out at gpt-4o-mini prices.
    assert (row.input_tokens, row.output_tokens) == (200, 40)
    assert row.cost_microusd == 2 * (100 * 0.15 + 20 * 0.6)


def test_follow_up_is_scheduled_composed_with_the_earlier_message_and_sent(
    seed: Seed, settings: Settings
) -> None:
    seed.campaign(steps=[{"delay_hours": 0}, {"delay_hours": 72, "prompt": "Mention the case study."}])
    runtime, model = scripted_runtime(
        seed.db, settings, GOOD_SMS, "Hi Ada, following up on my note about meetings."
    )
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "pending"
    row = seed.enrolment(cl)
    assert (row.step, row.next_action_at, row.lease_owner, row.attempts) == (
        1,
        NOW + timedelta(hours=72),
        None,
        0,
    )
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    follow_up_prompt = "\n".join(str(m.content) for m in model.prompts[-1])
    assert (
        "EARLIER_MESSAGES" in follow_up_prompt
        and "Analytical Engines. Open to a 15-minute" in follow_up_prompt
    )
    assert "Mention the case study." in follow_up_prompt
    assert [(m.step, m.status) for m in seed.messages(cl)] == [(0, "sent"), (1, "sent")]
    assert "Reply STOP" not in seed.messages(cl)[1].body  # the opt-out line is for the first touch


@pytest.mark.parametrize("where", ["lead", "enrolment"])
def test_a_reply_stops_the_sequence(seed: Seed, runtime: PipelineRuntime, where: str) -> None:
    seed.campaign(steps=[{"delay_hours": 0}, {"delay_hours": 72}])
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "pending"
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        target = Lead if where == "lead" else CampaignLead
        key = seed.enrolment(cl).lead_id if where == "lead" else cl
        session.execute(update(target).where(target.id == key).values(replied_at=NOW))
    seed.claim(cl)
    assert run(seed, runtime, cl) == "skipped"
    assert "replied" in (seed.enrolment(cl).status_reason or "")
    assert len(seed.messages(cl)) == 1


@pytest.mark.parametrize(
    ("lead_fields", "suppressed", "reason"),
    [
        ({"phone": "+1212555"}, False, "not a valid phone number"),
        ({"phone": None}, False, "has no phone number"),
        ({"opted_out_at": NOW}, False, "opted out"),
        ({}, True, "suppression list (stop)"),
    ],
)
def test_unmessageable_leads_are_skipped_before_any_spend(
    seed: Seed, runtime: PipelineRuntime, lead_fields: dict[str, Any], suppressed: bool, reason: str
) -> None:
    lead_id = seed.lead(**lead_fields)
    if suppressed:
        with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
            session.add(
                Suppression(tenant_id=seed.tenant_id, channel="sms", address="+12125550101", reason="stop")
            )
    cl = seed.enrol(lead_id)
    assert run(seed, runtime, cl) == "skipped"
    row = seed.enrolment(cl)
    assert reason in (row.status_reason or "") and row.input_tokens == 0
    assert seed.messages() == [] and count(seed.db, seed.tenant_id, LLMCall.id) == 0


def test_outside_the_send_window_is_deferred_to_the_next_window(seed: Seed, runtime: PipelineRuntime) -> None:
    cl = seed.enrol(seed.lead(time_zone="Asia/Tokyo"))  # NOW is 00:00 in Tokyo
    assert run(seed, runtime, cl) == "deferred"
    row = seed.enrolment(cl)
    assert row.next_action_at == datetime(2026, 11, 18, 23, 0, tzinfo=NOW.tzinfo)  # 08:00 Tokyo
    assert row.lease_owner is None and count(seed.db, seed.tenant_id, LLMCall.id) == 0


def test_campaign_window_override_applies(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.campaign(send_window={"start": "11:00", "end": "17:00"})  # NOW is 10:00 in New York
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "deferred"
    assert seed.enrolment(cl).next_action_at == NOW + timedelta(hours=1)


class RefusingGate:
    def reserve_model_call(self, **kwargs: Any) -> object:
        raise BudgetExceeded("budget cap reached")

    def settle_model_call(self, reservation: object, **kwargs: Any) -> None:
        raise AssertionError("nothing was reserved")

    def acquire_send(self, **kwargs: Any) -> None:
        return None


def test_budget_cap_puts_the_lead_back_to_pending_with_nothing_spent(seed: Seed, settings: Settings) -> None:
    runtime, model = scripted_runtime(seed.db, settings, GOOD_SMS, gate=RefusingGate())
    cl = seed.enrol(attempts=1)
    assert run(seed, runtime, cl) == "pending"
    row = seed.enrolment(cl)
    assert (row.status_reason, row.attempts, row.lease_owner, row.cost_microusd) == (
        "budget cap reached",
        0,
        None,
        0,
    )
    assert model.prompts == [] and seed.messages() == []
    assert any(e.message == "budget cap reached" for e in seed.events(cl))


def test_an_enrolment_leased_to_someone_else_is_not_touched(seed: Seed, runtime: PipelineRuntime) -> None:
    cl = seed.enrol(lease_owner="worker-2")
    assert run(seed, runtime, cl) == LEASE_LOST
    assert seed.enrolment(cl).status == "in_progress" and seed.events(cl) == []


class StealingGate:
    """Another worker takes the lease while this one waits for its send slot."""

    def __init__(self, db: Database, tenant_id: int) -> None:
        self.db, self.tenant_id = db, tenant_id

    def reserve_model_call(self, **kwargs: Any) -> object:
        return None

    def settle_model_call(self, reservation: object, **kwargs: Any) -> None:
        return None

    def acquire_send(self, **kwargs: Any) -> None:
        with self.db.session(tenant_id=self.tenant_id) as session, session.begin():
            session.execute(update(CampaignLead).values(lease_owner="worker-2"))


def test_a_lost_lease_sends_nothing_and_overwrites_nothing(seed: Seed, runtime: PipelineRuntime) -> None:
    runtime.gate = StealingGate(seed.db, seed.tenant_id)
    cl = seed.enrol()
    assert run(seed, runtime, cl) == LEASE_LOST
    row = seed.enrolment(cl)
    assert (row.status, row.lease_owner) == ("in_progress", "worker-2")
    assert seed.messages() == []
    assert count(seed.db, seed.tenant_id, OutboxMessage.id) == 0  # the outbox was never called
    assert "not sent" in seed.events(cl)[-2].message


def test_guard_failure_is_regenerated_once_with_feedback(seed: Seed, settings: Settings) -> None:
    runtime, model = scripted_runtime(
        seed.db, settings, "Hi Ada, see https://evil.example/x Reply STOP to opt out", GOOD_SMS
    )
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    assert len(model.prompts) == 2
    assert "link to evil.example is not on the tenant's allow-list" in str(model.prompts[1][-1].content)
    assert seed.messages(cl)[0].body == GOOD_SMS


def test_guard_failing_twice_fails_the_lead_and_sends_nothing(seed: Seed, settings: Settings) -> None:
    runtime, model = scripted_runtime(
        seed.db, settings, "Call me at +1 (646) 555-0199! Reply STOP to opt out"
    )
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "failed"
    row = seed.enrolment(cl)
    assert row.error.startswith("the draft failed the guard twice: the phone number +1 (646) 555-0199")
    assert len(model.prompts) == 2 and seed.messages() == []


def test_a_model_that_fails_is_data_not_a_crash(seed: Seed, settings: Settings) -> None:
    runtime, model = scripted_runtime(seed.db, settings, GOOD_SMS)
    model.fail_with = RuntimeError("model exploded")
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "failed"
    assert "model exploded" in (seed.enrolment(cl).error or "")
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        errors = session.scalars(select(LLMCall.error).where(LLMCall.node == "compose")).all()
    assert errors and "model exploded" in errors[0]


def test_email_has_subject_unsubscribe_line_and_postal_address(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.campaign(channel="email")
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    [message] = seed.messages(cl)
    assert (
        message.subject == "A quick idea for Analytical Engines"
        and message.to_address == "ada@analytical.example"
    )
    assert "To stop receiving these emails, reply 'unsubscribe'." in message.body
    assert "1 Main St, Springfield, IL 62701" in message.body


def test_email_without_a_postal_address_fails_before_any_spend(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.campaign(channel="email")
    seed.tenant(postal_address=None)
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "failed"
    assert "postal address" in (seed.enrolment(cl).error or "")
    assert count(seed.db, seed.tenant_id, LLMCall.id) == 0


# -- the ledger and the providers ---------------------------------------------------------------


class ScriptedSender:
    name = "twilio"

    def __init__(self, outcome: Exception | None = None) -> None:
        self.outcome = outcome
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.outcome is not None:
            raise self.outcome
        self.sent.append(message)
        return SendReceipt(f"SM{len(self.sent)}")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


def test_opted_out_answer_from_the_provider_suppresses_the_number(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    runtime.senders = {
        "sms": ScriptedSender(
            NotSent("the recipient has opted out (Twilio 21610)", permanent=True, opted_out=True)
        )
    }
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "skipped"
    [message] = seed.messages(cl)
    assert message.status == "failed" and "21610" in message.error
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        suppression = session.scalars(select(Suppression)).one()
    assert (suppression.channel, suppression.address, suppression.reason) == ("sms", "+12125550101", "stop")


def test_a_transient_refusal_defers_and_the_retry_reuses_the_ledger_row(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    flaky = ScriptedSender(NotSent("Twilio rate limit (429)", permanent=False, retry_after=5))
    runtime.senders = {"sms": flaky}
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "deferred"
    assert seed.enrolment(cl).next_action_at == NOW + timedelta(seconds=30)
    assert seed.messages(cl)[0].error.startswith("never reached the provider")
    flaky.outcome = None
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    [message] = seed.messages(cl)
    assert (message.status, message.provider_message_id, message.error) == ("sent", "SM1", None)


def test_an_unknown_provider_outcome_is_never_retried(seed: Seed, runtime: PipelineRuntime) -> None:
    runtime.senders = {"sms": ScriptedSender(TimeoutError("read timed out"))}
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "unknown"
    assert seed.messages(cl)[0].status == "unknown"
    seed.claim(cl)  # even if someone puts it back in the queue ...
    runtime.senders = {"sms": ScriptedSender()}
    assert run(seed, runtime, cl) == "unknown"  # ... the ledger row stops a second send
    assert len(seed.messages(cl)) == 1


class LedgerCheckingSender(ScriptedSender):
    """A provider outside the database: when it is called, the `sending` row must be committed."""

    def __init__(self, db: Database, tenant_id: int) -> None:
        super().__init__()
        self.db, self.tenant_id = db, tenant_id
        self.ledger_seen: list[str] = []

    def send(self, message: OutgoingMessage) -> SendReceipt:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            self.ledger_seen += session.scalars(
                select(Message.status).where(Message.idempotency_key == message.idempotency_key)
            ).all()
        return super().send(message)


def test_a_real_provider_is_called_only_after_the_sending_row_is_committed(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    sender = LedgerCheckingSender(seed.db, seed.tenant_id)
    runtime.senders = {"sms": sender}
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    assert sender.ledger_seen == ["sending"]
    assert [(m.status, m.provider_message_id) for m in seed.messages(cl)] == [("sent", "SM1")]


def test_a_crash_after_an_outbox_delivery_is_reconciled_and_never_sent_twice(
    seed: Seed, runtime: PipelineRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox is called like any provider: the `sending` row is committed first, and a run
    # that dies after the delivery leaves it for reconciliation, which asks the outbox.
    from core.pipeline import finalize

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("finalize broke")

    monkeypatch.setattr(finalize, "outcome_values", crash)
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "failed"  # crashed after the delivery, before its outcome
    [message] = seed.messages(cl)
    assert message.status == "sending" and count(seed.db, seed.tenant_id, OutboxMessage.id) == 1
    assert "finalize broke" in (seed.enrolment(cl).error or "")
    monkeypatch.undo()
    assert reconcile_sending_message(seed.db, runtime, message.id) == "sent"
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    [message] = seed.messages(cl)
    assert message.status == "sent" and message.provider_message_id == "outbox-reconciled"
    assert count(seed.db, seed.tenant_id, OutboxMessage.id) == 1  # not delivered a second time


def test_the_outbox_is_called_only_after_the_sending_row_is_committed(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seen: list[str] = []
    outbox = runtime.senders["sms"]
    deliver = outbox.send

    def checking_send(message: OutgoingMessage) -> SendReceipt:
        with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
            seen.extend(session.scalars(select(Message.status)).all())
        return deliver(message)

    outbox.send = checking_send  # type: ignore[method-assign]
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    assert seen == ["sending"]
    [message] = seed.messages(cl)
    assert (message.status, message.sent_at) == ("sent", NOW)
    assert message.provider_message_id.startswith("outbox-")


def test_an_already_sent_step_is_not_sent_again(seed: Seed, runtime: PipelineRuntime) -> None:
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "sent"
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    assert len(seed.messages(cl)) == 1 and count(seed.db, seed.tenant_id, OutboxMessage.id) == 1


def _sending_row(seed: Seed, cl: int, provider: str) -> int:
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        session.execute(
            update(CampaignLead)
            .where(CampaignLead.id == cl)
            .values(status=EnrolmentStatus.pending.value, lease_owner=None)
        )
        message = Message(
            tenant_id=seed.tenant_id,
            campaign_id=seed.campaign_id,
            campaign_lead_id=cl,
            lead_id=seed.enrolment(cl).lead_id,
            step=0,
            channel="sms",
            to_address="+12125550101",
            body="Hi",
            provider=provider,
            status="sending",
            idempotency_key=f"cl{cl}-s0",
        )
        session.add(message)
        session.flush()
        return message.id


def test_reconcile_outbox_row_that_reached_the_outbox_is_sent(seed: Seed, runtime: PipelineRuntime) -> None:
    cl = seed.enrol()
    message_id = _sending_row(seed, cl, "outbox")
    OutboxSender(seed.db).send(
        OutgoingMessage(
            tenant_id=seed.tenant_id,
            campaign_id=seed.campaign_id,
            channel="sms",
            to_address="+12125550101",
            body="Hi",
            idempotency_key=f"cl{cl}-s0",
        ),
    )
    assert reconcile_sending_message(seed.db, runtime, message_id) == "sent"
    assert seed.enrolment(cl).status == "sent"


def test_reconcile_outbox_row_that_never_reached_it_is_retried_safely(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    cl = seed.enrol()
    message_id = _sending_row(seed, cl, "outbox")
    assert reconcile_sending_message(seed.db, runtime, message_id) == "failed"
    row = seed.enrolment(cl)
    assert (row.status, row.next_action_at) == ("pending", NOW)
    assert seed.messages(cl)[0].error == "never reached the provider"
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    assert [m.status for m in seed.messages(cl)] == ["sent"]


def test_reconcile_twilio_row_is_unknown_for_a_person(seed: Seed, runtime: PipelineRuntime) -> None:
    cl = seed.enrol()
    message_id = _sending_row(seed, cl, "twilio")
    assert reconcile_sending_message(seed.db, runtime, message_id) == MessageStatus.unknown.value
    assert seed.enrolment(cl).status == "unknown"
    assert reconcile_sending_message(seed.db, runtime, message_id) == "unknown"  # idempotent


def test_many_leads_in_threads_each_sent_exactly_once(seed: Seed, runtime: PipelineRuntime) -> None:
    # The runner runs leads concurrently in threads, sharing one runtime and one database.
    from concurrent.futures import ThreadPoolExecutor

    ids = [seed.enrol(seed.lead(phone=f"+1212555{1000 + i}", email=f"t{i}@x.example")) for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda cl: run(seed, runtime, cl), ids))
    assert statuses == ["sent"] * len(ids)
    messages = seed.messages()
    assert sorted(m.campaign_lead_id for m in messages) == sorted(ids)
    assert count(seed.db, seed.tenant_id, OutboxMessage.id) == len(ids)


def test_the_ab_variant_is_assigned_deterministically_and_recorded(seed: Seed, settings: Settings) -> None:
    seed.campaign(
        variants=[
            {"name": "A", "prompt": "Lead with the case study."},
            {"name": "B", "prompt": "Lead with a question."},
        ]
    )
    runtime, model = scripted_runtime(seed.db, settings, GOOD_SMS)
    ids = [
        seed.enrol(seed.lead(phone=f"+1212555{2000 + i}", email=f"v{i}@x.example"), variant="")
        for i in range(8)
    ]
    for cl in ids:
        assert run(seed, runtime, cl) == "sent"
    variants = [seed.enrolment(cl).variant for cl in ids]
    assert set(variants) == {"A", "B"}
    for prompt, variant in zip(model.prompts, variants, strict=True):
        expected = "Lead with the case study." if variant == "A" else "Lead with a question."
        assert f"Variant {variant}: {expected}" in str(prompt[0].content)
