"""The runner in this process: a campaign run to the end, pause/resume/cancel, budget, follow-ups, leases."""

from __future__ import annotations

import functools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

import jobs.runner
from core.campaign_runs import cancel_campaign, pause_campaign, resume_campaign
from core.channels.base import OutgoingMessage, SendReceipt
from core.config import Settings
from core.db import Database
from core.errors import ProviderAccountRefused
from core.gate import DatabaseGate
from core.models import (
    Campaign,
    CampaignLead,
    Lead,
    LLMCall,
    Message,
    OutboxMessage,
    WorkerHeartbeat,
)
from core.pipeline.runtime import gated_runtime
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from core.replies import record_reply
from core.workers import list_workers
from jobs.claims import claim_due_enrolments
from jobs.runner import Runner, work_left
from tests.jobs.conftest import CampaignMaker, PinnedClock, lead_statuses, wait_for
from tests.jobs.slow_sender import SlowSender


def _start(runners: list[Runner], db: Database, settings: Settings, **options: object) -> Runner:
    runner = Runner(db, settings, **options)  # type: ignore[arg-type]
    runners.append(runner)
    runner.start()
    return runner


def _slow_runtime(db: Database, settings: Settings, delay: float) -> PipelineRuntime:
    runtime = PipelineRuntime.from_settings(settings, db, gate=DatabaseGate(db, settings))
    sender = SlowSender(delay)
    runtime.senders = {"sms": sender, "email": sender}
    return runtime


def _campaign_status(db: Database, campaign_id: int) -> str:
    with db.session(system=True, read_only=True) as session:
        return str(session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


def _count(db: Database, statement: object) -> int:
    with db.session(system=True, read_only=True) as session:
        return int(session.scalar(statement) or 0)  # type: ignore[call-overload]


def test_a_campaign_runs_to_completion_with_one_message_per_lead(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner],
) -> None:
    campaign = running_campaign(40)
    runner = _start(runners, runner_db, runner_settings, concurrency=4)

    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "completed")
    # The heartbeat tick runs on the scheduler's own thread: on a busy machine the 40 leads can
    # all be done before its first run, so wait for it rather than assume an order.
    wait_for(lambda: _count(runner_db, select(func.count()).select_from(WorkerHeartbeat)
                            .where(WorkerHeartbeat.worker_id == runner.worker_id)) == 1)

    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 40}
    with runner_db.session(system=True, read_only=True) as session:
        per_lead = session.execute(select(Message.lead_id, func.count(Message.id))
                                   .group_by(Message.lead_id)).all()
        outbox = session.scalar(select(func.count(OutboxMessage.id)))
        heartbeat = session.get(WorkerHeartbeat, runner.worker_id)
    assert sorted(lead for lead, _ in per_lead) == campaign.lead_ids
    assert {count for _, count in per_lead} == {1} and outbox == 40
    assert heartbeat is not None and heartbeat.mode == "standalone"
    assert runner.stats().outcomes == {"sent": 40}
    assert not work_left(runner_db, now=heartbeat.last_seen_at + timedelta(seconds=1))
    runner.stop()
    with runner_db.session(system=True, read_only=True) as session:
        assert session.get(WorkerHeartbeat, runner.worker_id) is None


def test_pause_stops_claims_resume_continues_cancel_leaves_none_in_flight(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner], monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = running_campaign(300)
    runtime = _slow_runtime(runner_db, runner_settings, delay=0.1)
    # Every claim the runner makes once the pause has committed is recorded: the test waits for
    # three of them instead of waiting a time in which the runner may or may not have claimed.
    paused = threading.Event()
    claims_after_pause: list[list[int]] = []

    def recording_claim(*args: Any, **kwargs: Any) -> list[int]:
        after_pause = paused.is_set()
        claimed = claim_due_enrolments(*args, **kwargs)
        if after_pause:
            claims_after_pause.append(claimed)
        return claimed

    monkeypatch.setattr(jobs.runner, "claim_due_enrolments", recording_claim)
    runner = _start(runners, runner_db, runner_settings, concurrency=4, runtime=runtime)

    def touched() -> int:  # leads ever claimed
        return _count(runner_db, select(func.count(CampaignLead.id)).where(
            CampaignLead.campaign_id == campaign.campaign_id, CampaignLead.attempts > 0))

    wait_for(lambda: touched() >= 10)
    pause_campaign(runner_db, campaign.actor, campaign.campaign_id)
    paused.set()
    wait_for(lambda: runner.stats().in_flight == 0 and len(claims_after_pause) >= 3)
    assert claims_after_pause[:3] == [[], [], []]  # a claim after the pause takes nothing
    after_pause = touched()
    statuses = lead_statuses(runner_db, campaign.campaign_id)
    assert "in_progress" not in statuses and statuses["pending"] > 0

    resume_campaign(runner_db, campaign.actor, campaign.campaign_id)
    wait_for(lambda: touched() >= after_pause + 10)

    cancel_campaign(runner_db, campaign.actor, campaign.campaign_id)
    messages_at_cancel = _count(runner_db, select(func.count(Message.id)))
    statuses = lead_statuses(runner_db, campaign.campaign_id)
    assert "in_progress" not in statuses and "pending" not in statuses
    assert statuses["cancelled"] > 0
    wait_for(lambda: runner.stats().in_flight == 0)
    # The workers still running a lead when it was cancelled have finished: none wrote a further
    # ledger row.
    assert _count(runner_db, select(func.count(Message.id))) == messages_at_cancel
    assert set(lead_statuses(runner_db, campaign.campaign_id)) <= {"sent", "cancelled"}


@pytest.mark.parametrize("concurrency", [1, 6])
def test_the_budget_cap_pauses_the_campaign_and_is_never_exceeded(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner], concurrency: int,
) -> None:
    # A tenant price for the campaign's model makes each offline call cost about $0.001.
    prices = {"gpt-4o-mini": {"input": 2, "output": 2}}
    cap = 12_000
    campaign = running_campaign(60, tenant_values={"price_overrides": prices},
                                budget_cap_microusd=cap)
    _start(runners, runner_db, runner_settings, concurrency=concurrency)

    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "paused")
    wait_for(lambda: "in_progress" not in lead_statuses(runner_db, campaign.campaign_id))

    with runner_db.session(system=True, read_only=True) as session:
        row = session.get(Campaign, campaign.campaign_id)
        calls = session.execute(select(func.count(LLMCall.id), func.sum(LLMCall.cost_microusd),
                                       func.max(LLMCall.cost_microusd))).one()
    assert row is not None and "budget cap" in (row.status_reason or "")
    count, total, largest = calls
    assert count > 0 and total == row.spent_microusd
    assert total <= cap  # each call's reservation held its full estimate
    # And it stopped only when the next call did not fit. An estimate (200 output tokens) is
    # under two calls' actual cost; at the refusal every other lead in flight may hold one.
    assert cap - total < concurrency * 2 * largest
    statuses = lead_statuses(runner_db, campaign.campaign_id)
    assert statuses["pending"] > 0 and statuses["sent"] == count


def test_follow_ups_wait_their_delay_and_stop_on_reply_and_opt_out(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner], pinned_clock: PinnedClock,
) -> None:
    # The clock is pinned, so no follow-up falls due before every first touch is out, however
    # slowly the machine sends them; the test then moves it past the delay.
    delay = timedelta(hours=1)
    campaign = running_campaign(
        3, steps=[{"delay_hours": 0}, {"delay_hours": 1, "prompt": "A friendly nudge."}])
    pinned_clock.set(datetime.now(UTC))  # after the enrolment, so its leads are due
    runtime = gated_runtime(runner_db, runner_settings)
    runtime.now = pinned_clock
    first = _start(runners, runner_db, runner_settings, concurrency=3, runtime=runtime)

    def waiting_for_step_one() -> bool:
        return _count(runner_db, select(func.count(CampaignLead.id)).where(
            CampaignLead.step == 1, CampaignLead.status == "pending")) == 3

    wait_for(waiting_for_step_one)
    first.stop()
    assert _count(runner_db, select(func.count(Message.id))) == 3  # the first touches only
    keeps_going, replies, opts_out = campaign.lead_ids
    record_reply(runner_db, campaign.actor, phone=_phone(runner_db, replies))
    record_reply(runner_db, campaign.actor, phone=_phone(runner_db, opts_out), stop=True)

    _start(runners, runner_db, runner_settings, concurrency=3, runtime=runtime)
    pinned_clock.advance(delay + timedelta(seconds=1))
    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "completed")

    with runner_db.session(system=True, read_only=True) as session:
        sent = session.execute(select(Message.lead_id, Message.step, Message.sent_at)
                               .order_by(Message.lead_id, Message.step)).all()
        reasons = dict(session.execute(select(CampaignLead.lead_id, CampaignLead.status_reason)).all())
    assert [(lead, step) for lead, step, _ in sent] == [
        (keeps_going, 0), (keeps_going, 1), (replies, 0), (opts_out, 0)]
    first_sent, follow_up_sent = sent[0][2], sent[1][2]
    assert first_sent is not None and follow_up_sent is not None
    assert follow_up_sent - first_sent >= delay
    assert reasons[replies] == "replied: sequence stopped" and reasons[opts_out] == "opted out"


def _phone(db: Database, lead_id: int) -> str:
    with db.session(system=True, read_only=True) as session:
        return str(session.scalar(select(Lead.phone).where(Lead.id == lead_id)))


def test_a_worker_keeps_its_leases_while_it_works_past_them(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner], pinned_clock: PinnedClock,
) -> None:
    campaign = running_campaign(3)
    pinned_clock.set(datetime.now(UTC))  # after the enrolment, so its leads are due
    release = threading.Event()

    def slow_process(db: Database, runtime: object, lead_id: int, *, lease_owner: str) -> str:
        release.wait(60)
        with db.session(system=True) as session, session.begin():
            session.execute(update(CampaignLead).where(
                CampaignLead.id == lead_id, CampaignLead.lease_owner == lease_owner)
                .values(status="sent", lease_owner=None, lease_expires_at=None))
        return "sent"

    _start(runners, runner_db, runner_settings, concurrency=3, process_enrolment=slow_process)
    wait_for(lambda: lead_statuses(runner_db, campaign.campaign_id) == {"in_progress": 3})
    other = _start(runners, runner_db, runner_settings, concurrency=3)
    lease = timedelta(seconds=runner_settings.lease_seconds)

    def renewed_at(now: datetime) -> bool:
        with runner_db.session(system=True, read_only=True) as session:
            expiries = list(session.scalars(select(CampaignLead.lease_expires_at)))
        return all(expiry is not None and expiry >= now + lease for expiry in expiries)

    # Two leases in half-lease steps: each step waits for the renewal at the new time, so the
    # other worker only ever sees leases with half a lease left, never an expired one.
    for _ in range(4):
        wait_for(functools.partial(renewed_at, pinned_clock.advance(lease / 2)))
    release.set()
    wait_for(lambda: lead_statuses(runner_db, campaign.campaign_id) == {"sent": 3})
    assert other.stats().processed == 0
    with runner_db.session(system=True, read_only=True) as session:
        assert set(session.scalars(select(CampaignLead.attempts))) == {1}


def test_a_lead_whose_run_crashed_is_retried_after_its_lease(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner],
) -> None:
    campaign = running_campaign(2)
    crashed: list[int] = []

    def flaky_process(db: Database, runtime: PipelineRuntime, lead_id: int, *, lease_owner: str) -> str:
        if not crashed:
            crashed.append(lead_id)
            raise RuntimeError("the database went away")
        return process_campaign_lead(db, runtime, lead_id, lease_owner=lease_owner)

    runner = _start(runners, runner_db, runner_settings, concurrency=2, process_enrolment=flaky_process)
    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "completed", timeout=20)
    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 2}
    assert runner.stats().errors == 1
    with runner_db.session(system=True, read_only=True) as session:
        assert session.scalar(select(CampaignLead.attempts).where(CampaignLead.id == crashed[0])) == 2


def test_the_monitor_lists_workers_by_their_heartbeat(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner],
) -> None:
    campaign = running_campaign(1)
    runner = _start(runners, runner_db, runner_settings, concurrency=2)
    wait_for(lambda: bool(list_workers(runner_db, campaign.actor)))
    (worker,) = list_workers(runner_db, campaign.actor)
    assert (worker.worker_id, worker.mode, worker.alive) == (runner.worker_id, "standalone", True)
    later = worker.last_seen_at + timedelta(minutes=5)
    assert [w.alive for w in list_workers(runner_db, campaign.actor, now=later)] == [False]


class RefusingAccountSender(SlowSender):
    """Twilio with a revoked token: every send is refused until `fixed` is set."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.fixed = False
        self.refused = 0

    def send(self, message: OutgoingMessage) -> SendReceipt:
        if not self.fixed:
            with self._lock:
                self.refused += 1
            raise ProviderAccountRefused("Twilio refused the account (error 20003): check the token",
                                         provider="twilio")
        return super().send(message)


def test_a_refused_account_pauses_the_run_and_burns_no_lead(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner],
) -> None:
    campaign = running_campaign(40)
    runtime = PipelineRuntime.from_settings(
        runner_settings, runner_db, gate=DatabaseGate(runner_db, runner_settings)
    )
    sender = RefusingAccountSender()
    runtime.senders = {"sms": sender, "email": sender}
    runner = _start(runners, runner_db, runner_settings, concurrency=8, runtime=runtime)

    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "paused")
    wait_for(lambda: "in_progress" not in lead_statuses(runner_db, campaign.campaign_id))
    # Only the leads already in flight reached the provider; every lead waits, none failed.
    assert lead_statuses(runner_db, campaign.campaign_id) == {"pending": 40}
    assert 1 <= sender.refused <= 8 and sender.sent == []
    assert _count(runner_db, select(func.count(Message.id)).where(Message.status != "failed")) == 0
    with runner_db.session(system=True, read_only=True) as session:
        row = session.get(Campaign, campaign.campaign_id)
        assert row is not None and "Twilio refused the account" in (row.status_reason or "")
        assert set(session.scalars(select(CampaignLead.attempts))) == {0}

    sender.fixed = True
    resume_campaign(runner_db, campaign.actor, campaign.campaign_id)
    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "completed", timeout=60)
    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 40}
    assert sorted(sender.sent) == sorted(set(sender.sent)) and len(sender.sent) == 40
    assert runner.stats().errors == 0


class LosingDatabaseGate:
    """The shared gate, whose first model call meets a dropped database connection."""

    def __init__(self, gate: DatabaseGate) -> None:
        self.gate = gate
        self.dropped = threading.Event()

    def reserve_model_call(self, **kwargs: Any) -> object:
        if not self.dropped.is_set():
            self.dropped.set()
            raise OperationalError("SELECT ...", {}, psycopg.OperationalError("server closed the connection"))
        return self.gate.reserve_model_call(**kwargs)

    def settle_model_call(self, reservation: object, **kwargs: Any) -> None:
        self.gate.settle_model_call(reservation, **kwargs)

    def acquire_send(self, **kwargs: Any) -> None:
        self.gate.acquire_send(**kwargs)


def test_a_lost_database_connection_retries_the_lead_after_its_lease(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner],
) -> None:
    campaign = running_campaign(2)
    gate = LosingDatabaseGate(DatabaseGate(runner_db, runner_settings))
    runtime = PipelineRuntime.from_settings(runner_settings, runner_db, gate=gate)  # type: ignore[arg-type]
    runner = _start(runners, runner_db, runner_settings, concurrency=2, runtime=runtime)
    wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "completed", timeout=20)
    assert gate.dropped.is_set()
    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 2}
    assert runner.stats().outcomes.get("retry_after_lease") == 1
    with runner_db.session(system=True, read_only=True) as session:
        assert sorted(session.scalars(select(CampaignLead.attempts))) == [1, 2]
        assert session.scalar(select(Campaign.consecutive_provider_failures)) == 0


def test_a_database_that_went_away_is_a_warning_not_a_crash(
    runner_db: Database, runner_settings: Settings, running_campaign: CampaignMaker,
    runners: list[Runner],
) -> None:
    campaign = running_campaign(2)
    dropped: list[int] = []

    def flaky_process(db: Database, runtime: PipelineRuntime, lead_id: int, *, lease_owner: str) -> str:
        if not dropped:  # reading the run's inputs met a dropped connection
            dropped.append(lead_id)
            raise OperationalError("SELECT ...", {}, psycopg.OperationalError("server closed the connection"))
        return process_campaign_lead(db, runtime, lead_id, lease_owner=lease_owner)

    with capture_logs() as logs:
        _start(runners, runner_db, runner_settings, concurrency=2, process_enrolment=flaky_process)
        wait_for(lambda: _campaign_status(runner_db, campaign.campaign_id) == "completed", timeout=20)
    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 2}
    events = [entry["event"] for entry in logs]
    assert events.count("lead_interrupted_by_database") == 1 and "lead_failed" not in events
