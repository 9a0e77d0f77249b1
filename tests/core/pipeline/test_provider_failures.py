"""Failures that pause instead of burning the audience: account refusals, the error threshold, the database.

A refused credential or an empty account (OpenAI 401/403/insufficient_quota through the real
ChatOpenAI, Twilio 401 through the real SDK, SMTP 535) pauses the campaign with a reason and
leaves the lead pending with nothing sent; N provider failures in a row pause it too; a transient
database error leaves the lead to be retried after its lease.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from core.campaign_runs import resume_campaign, retry_failed_leads
from core.channels.base import NotSent, OutgoingMessage, SendReceipt
from core.config import Settings
from core.models import AuditLog, Campaign, LLMCall, OutboxMessage, Role
from core.pipeline.graph import PipelineNodes, build_pipeline, compiled_pipeline
from core.pipeline.service import PipelineRuntime, preview, process_campaign_lead
from jobs.recovery import recover_expired_leases
from tests.conftest import make_settings
from tests.core.pipeline.conftest import NOW, WORKER, Seed, openai_runtime, scripted_runtime
from tests.factories import make_actor
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_smtp import smtp_relay
from tests.support.fake_twilio import MESSAGE_SID, SID, TOKEN, FakeTwilio, fake_twilio

OPT_OUT = "Reply STOP to opt out"
GOOD_SMS = f"Hi Ada, quick idea for Analytical Engines. Open to a 15-minute call next week? {OPT_OUT}"


def run(seed: Seed, runtime: PipelineRuntime, campaign_lead_id: int, owner: str = WORKER) -> str:
    return process_campaign_lead(seed.db, runtime, campaign_lead_id, lease_owner=owner)


def campaign_row(seed: Seed) -> Campaign:
    with seed.db.session(system=True, read_only=True) as session:
        campaign = session.get(Campaign, seed.campaign_id)
        assert campaign is not None
        return campaign


def outbox_count(seed: Seed) -> int:
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        return session.scalar(select(func.count(OutboxMessage.id))) or 0


def assert_left_pending(seed: Seed, campaign_lead_id: int, *, attempts: int) -> None:
    row = seed.enrolment(campaign_lead_id)
    assert (row.status, row.lease_owner, row.lease_expires_at, row.attempts) == (
        "pending",
        None,
        None,
        attempts,
    )
    assert row.error is None and row.completed_at is None


def resume(seed: Seed) -> None:
    resume_campaign(seed.db, make_actor(seed.db, seed.tenant_id), seed.campaign_id)


# -- OpenAI: the real client against the local server -------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    def completion(request: dict[str, Any]) -> str:
        system = str(request["messages"][0]["content"])
        return "[]" if "condense-facts" in system else GOOD_SMS

    with FakeOpenAI(completion=completion) as fake:
        yield fake


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ("401", "OpenAI refused the API key (401"),
        ("403", "OpenAI refused the API key permission"),
        ("insufficient_quota", "no quota left"),
    ],
)
def test_an_openai_account_refusal_pauses_the_campaign_and_leaves_the_lead_pending(
    seed: Seed, settings: Settings, server: FakeOpenAI, failure: Any, said: str
) -> None:
    runtime = openai_runtime(seed.db, settings, server, max_retries=2)
    server.failing = failure
    leads = [seed.enrol(seed.lead(phone=f"+1212555010{i}", email=f"a{i}@x.example")) for i in range(2)]
    for cl in leads:
        assert run(seed, runtime, cl) == "pending"
        assert_left_pending(seed, cl, attempts=0)  # the claim's attempt is given back
    # One request per lead, not retried, and the draft is not attempted after the research refusal.
    assert server.requests == len(leads)
    campaign = campaign_row(seed)
    assert campaign.status == "paused"
    assert said in (campaign.status_reason or "")
    # No key, key fragment or organisation id in what users see.
    for text in (campaign.status_reason or "", *(e.message for e in seed.events(leads[0]))):
        assert "sk-test" not in text and "org-" not in text
    assert seed.messages() == [] and outbox_count(seed) == 0
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "pause")).all()
        assert [a.details["reason"] for a in audit] == [campaign.status_reason]  # paused once
        assert session.scalar(select(func.sum(LLMCall.cost_microusd))) in (0, None)

    server.failing = None  # the key is fixed, the campaign resumed: the same leads go out
    resume(seed)
    for cl in leads:
        seed.claim(cl)
        assert run(seed, runtime, cl) == "sent"
    assert len(seed.messages()) == len(leads)


def test_a_preview_with_a_refused_key_says_why_and_pauses_nothing(
    seed: Seed, settings: Settings, server: FakeOpenAI
) -> None:
    server.failing = "401"
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    runtime = openai_runtime(seed.db, settings, server, max_retries=2)
    result = preview(seed.db, runtime, actor, seed.campaign_id, seed.lead())
    assert result.status == "failed" and result.body is None
    assert (result.reason or "").startswith("OpenAI refused the API key (401 invalid_api_key)")
    assert campaign_row(seed).status == "running"


def test_a_rate_limit_or_a_server_error_is_not_an_account_problem(
    seed: Seed, settings: Settings, server: FakeOpenAI
) -> None:
    runtime = openai_runtime(seed.db, settings, server, max_retries=2)
    server.failing = "500"
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "deferred"
    assert campaign_row(seed).status == "running"


# -- Twilio: the real SDK against a local server answering as Twilio does ---------------------------


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        fake.auth_refused = True
        yield fake


def test_a_twilio_401_pauses_the_campaign_and_the_ledger_says_not_delivered(
    seed: Seed, settings: Settings, twilio: FakeTwilio
) -> None:
    values = settings.model_dump()
    values.update(
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14155550199",
        twilio_base_url=twilio.base_url,
    )
    runtime = PipelineRuntime.from_settings(make_settings(**values), seed.db, now=lambda: NOW)
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "pending"
    assert_left_pending(seed, cl, attempts=0)
    campaign = campaign_row(seed)
    assert campaign.status == "paused" and "Twilio" in (campaign.status_reason or "")
    assert "20003" in (campaign.status_reason or "")
    [message] = seed.messages(cl)
    # Refused before anything was sent: failed (not sent, not unknown), so it is reused after resume.
    assert message.status == "failed" and message.provider_message_id is None
    for text in (campaign.status_reason or "", message.error or "", *(e.message for e in seed.events(cl))):
        assert SID not in text

    twilio.auth_refused = False
    resume(seed)
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    [message] = seed.messages(cl)
    assert (message.status, message.provider_message_id) == ("sent", MESSAGE_SID)
    assert len(twilio.requests) == 2


# -- SMTP: the real smtplib against a local server refusing the login ---------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_smtp_535_pauses_the_campaign(seed: Seed, settings: Settings) -> None:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        # handled=False: aiosmtpd answers a refusal with its 535 (else it answers nothing).
        ok = isinstance(data, LoginPassword) and data.password == b"right"
        return AuthResult(success=ok, handled=False)

    with smtp_relay(authenticator) as (controller, inbox):
        values = settings.model_dump()
        values.update(
            email_provider="smtp",
            smtp_host="127.0.0.1",
            smtp_port=controller.port,
            smtp_from="sales@acme.example",
            smtp_username="mailer",
            smtp_password="wrong",
            smtp_starttls=False,
            smtp_timeout_seconds=5,
        )
        runtime = PipelineRuntime.from_settings(make_settings(**values), seed.db, now=lambda: NOW)
        seed.campaign(channel="email")
        cl = seed.enrol()
        assert run(seed, runtime, cl) == "pending"
        assert_left_pending(seed, cl, attempts=0)
        campaign = campaign_row(seed)
        assert campaign.status == "paused" and "535" in (campaign.status_reason or "")
        assert [m.status for m in seed.messages(cl)] == ["failed"] and inbox.envelopes == []


# -- the error threshold ----------------------------------------------------------------------------


class ScriptedSender:
    name = "twilio"

    def __init__(self) -> None:
        self.refusal: NotSent | None = None
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.refusal is not None:
            raise self.refusal
        self.sent.append(message)
        return SendReceipt(f"SM{len(self.sent)}")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


def test_consecutive_provider_failures_across_workers_pause_the_campaign(
    seed: Seed, settings: Settings
) -> None:
    settings = settings.model_copy(update={"provider_failure_threshold": 3})
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    sender = ScriptedSender()
    runtime.senders = {"sms": sender}
    leads = [seed.enrol(seed.lead(phone=f"+1212555020{i}", email=f"b{i}@x.example")) for i in range(6)]
    owners = ["worker-1", "worker-2", "worker-3"]

    def go(index: int) -> str:
        owner = owners[index % len(owners)]
        seed.claim(leads[index], owner=owner)
        return run(seed, runtime, leads[index], owner=owner)

    sender.refusal = NotSent("cannot reach Twilio: connection reset", permanent=False)
    assert [go(0), go(1)] == ["deferred", "deferred"]
    assert campaign_row(seed).consecutive_provider_failures == 2
    sender.refusal = None
    assert go(2) == "sent"  # a success resets the count
    assert campaign_row(seed).consecutive_provider_failures == 0
    sender.refusal = NotSent("cannot reach Twilio: connection reset", permanent=False)
    assert [go(3), go(4)] == ["deferred", "deferred"]
    assert campaign_row(seed).status == "running"
    assert go(5) == "deferred"
    campaign = campaign_row(seed)
    assert campaign.status == "paused"
    assert "3 provider failures in a row" in (campaign.status_reason or "")
    assert "cannot reach Twilio" in (campaign.status_reason or "")
    resume(seed)
    assert campaign_row(seed).consecutive_provider_failures == 0  # resuming starts the count afresh


def test_model_failures_count_too_and_the_threshold_can_be_turned_off(seed: Seed, settings: Settings) -> None:
    settings = settings.model_copy(update={"provider_failure_threshold": 2})
    runtime, model = scripted_runtime(seed.db, settings, GOOD_SMS)
    model.fail_with = RuntimeError("model exploded")
    first, second = seed.enrol(), seed.enrol(seed.lead(phone="+12125550199", email="c@x.example"))
    assert run(seed, runtime, first) == "failed"
    assert campaign_row(seed).status == "running"
    assert run(seed, runtime, second) == "failed"
    assert campaign_row(seed).status == "paused"

    seed.campaign(status="running", consecutive_provider_failures=0)
    runtime.settings = settings.model_copy(update={"provider_failure_threshold": 0})
    for i in range(3):
        assert (
            run(seed, runtime, seed.enrol(seed.lead(phone=f"+1212555030{i}", email=f"d{i}@x.example")))
            == "failed"
        )
    assert campaign_row(seed).status == "running"


def test_a_recipient_refusal_is_not_a_provider_failure(seed: Seed, settings: Settings) -> None:
    settings = settings.model_copy(update={"provider_failure_threshold": 1})
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    sender = ScriptedSender()
    sender.refusal = NotSent("the recipient has opted out (Twilio 21610)", permanent=True, opted_out=True)
    runtime.senders = {"sms": sender}
    assert run(seed, runtime, seed.enrol()) == "skipped"
    assert campaign_row(seed).status == "running"


# -- transient database errors ----------------------------------------------------------------------


def _connection_lost() -> Exception:
    return OperationalError(
        "UPDATE campaign_leads ...",
        {},
        psycopg.OperationalError("server closed the connection unexpectedly"),
    )


def _invalidated() -> Exception:
    return DBAPIError("SELECT 1", {}, Exception("terminating connection"), connection_invalidated=True)


TRANSIENT = {
    "connection lost": _connection_lost,
    "connection invalidated": _invalidated,
    "psycopg failover": lambda: psycopg.errors.AdminShutdown(
        "terminating connection due to administrator command"
    ),
    "sqlite locked": lambda: OperationalError(
        "INSERT ...", {}, sqlite3.OperationalError("database is locked")
    ),
}


def _raising_graph(monkeypatch: pytest.MonkeyPatch, node: str, error: Exception) -> None:
    def broken(state: Any, runtime: Any) -> dict[str, Any]:
        raise error

    graph = build_pipeline(PipelineNodes(**{node: broken}))
    monkeypatch.setattr("core.pipeline.service.compiled_pipeline", lambda: graph)


@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_a_transient_database_error_leaves_the_lead_to_be_retried_after_its_lease(
    seed: Seed, settings: Settings, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings.model_copy(update={"provider_failure_threshold": 1})
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    _raising_graph(monkeypatch, "compose", TRANSIENT[kind]())
    cl = seed.enrol()
    assert run(seed, runtime, cl) != "failed"
    row = seed.enrolment(cl)
    assert (row.status, row.lease_owner, row.error) == ("in_progress", WORKER, None)
    campaign = campaign_row(seed)
    assert (campaign.status, campaign.consecutive_provider_failures) == ("running", 0)

    report = recover_expired_leases(
        seed.db,
        now=NOW + timedelta(minutes=3),
        reconcile=lambda message_id: "unknown",
        max_attempts=10,
        lease_seconds=120,
    )
    assert report.returned_to_pending == 1 and seed.enrolment(cl).status == "pending"
    monkeypatch.setattr("core.pipeline.service.compiled_pipeline", compiled_pipeline)  # the database is back
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"


def test_a_transient_error_at_send_after_the_ledger_row_never_sends_twice(
    seed: Seed, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    sender = ScriptedSender()
    runtime.senders = {"sms": sender}

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise _connection_lost()

    # The provider accepted the message, then the database went away before the outcome was written.
    monkeypatch.setattr("core.pipeline.finalize.persist_outcome", lost)
    cl = seed.enrol()
    assert run(seed, runtime, cl) != "failed"
    assert len(sender.sent) == 1
    assert [m.status for m in seed.messages(cl)] == ["sending"]  # for recovery to reconcile
    assert seed.enrolment(cl).status == "in_progress"


def test_a_bug_is_still_an_internal_error(
    seed: Seed, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    error = OperationalError("SELECT nope", {}, sqlite3.OperationalError("no such table: nope"))
    _raising_graph(monkeypatch, "compose", error)
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "failed"
    assert (seed.enrolment(cl).error or "").startswith("internal error")


def test_a_failed_send_retried_by_a_person_reuses_its_ledger_row(seed: Seed, settings: Settings) -> None:
    runtime, _ = scripted_runtime(seed.db, settings, GOOD_SMS)
    sender = ScriptedSender()
    sender.refusal = NotSent("Twilio refused the message (21614): not a mobile number", permanent=True)
    runtime.senders = {"sms": sender}
    cl = seed.enrol()
    assert run(seed, runtime, cl) == "failed"
    assert [m.status for m in seed.messages(cl)] == ["failed"]

    sender.refusal = None  # say the number was ported to a mobile line
    assert retry_failed_leads(seed.db, make_actor(seed.db, seed.tenant_id), seed.campaign_id, now=NOW) == 1
    seed.claim(cl)
    assert run(seed, runtime, cl) == "sent"
    [message] = seed.messages(cl)
    assert (message.status, message.provider_message_id, message.error) == ("sent", "SM1", None)
    assert len(sender.sent) == 1
    # The provider is told whose message it is (an email's unsubscribe link names the lead).
    lead_id = seed.enrolment(cl).lead_id
    assert lead_id is not None and sender.sent[0].lead_id == lead_id
