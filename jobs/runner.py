"""The job runner: APScheduler drives the ticks, a thread pool runs the pipeline for claimed leads.

Threads, not asyncio: the work of a lead is waiting (on the model, the web page, the send
provider, the rate limits), the pipeline and its clients (LangGraph's sync `invoke`, ChatOpenAI,
the Twilio SDK, smtplib, SQLAlchemy sessions) are synchronous, and a thread per lead in flight
runs that code unchanged while the GIL is released during every wait. Concurrency is bounded by
the pool size (`--concurrency`), so a few dozen threads, not thousands.

The runner holds no state a restart can lose: what is claimed, by whom and until when is in
`campaign_leads`; a lease this process holds is renewed while it works on the lead, so only a dead
worker's leases expire. When a lead finishes, its thread claims the next one at once instead of
waiting for the next tick, which keeps the pool full at the rate limits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import and_, delete, exists, or_, select

from core.api_conventions import api_housekeeping
from core.campaign_ticks import complete_finished_campaigns, start_due_campaigns
from core.config import Settings
from core.db import Database
from core.gate import release_expired_reservations, renew_budget_reservations
from core.inbound.mailbox import MailboxUnavailable, poll_mailbox
from core.inbound.queue import process_waiting_replies, reply_lease_seconds, waiting_condition
from core.lifecycle import due_condition
from core.logs import bound, get_logger
from core.models import (
    Campaign,
    CampaignLead,
    CampaignStatus,
    EnrolmentStatus,
    Message,
    MessageStatus,
    WorkerHeartbeat,
)
from core.pipeline.runtime import gated_runtime
from core.pipeline.service import (
    PipelineRuntime,
    process_campaign_lead,
    reconcile_sending_message,
)
from core.pipeline.store import is_transient_database_error
from core.workers import HEARTBEAT_SECONDS
from jobs.claims import claim_due_enrolments, renew_leases
from jobs.recovery import recover_expired_leases
from jobs.webhooks import WebhookSender

log = get_logger(__name__)
# A tick still running when its next run is due is skipped (max_instances=1, coalesce): that is
# the intended behaviour under load, not something to warn about at every tick.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

ProcessEnrolmentFn = Callable[..., str]
# Heartbeat rows of workers silent for this long are removed (the dashboard shows the others).
STALE_HEARTBEAT = timedelta(days=1)
# The REST API's housekeeping (core.api_conventions.api_housekeeping) runs this often.
API_HOUSEKEEPING_SECONDS = 300.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunnerStats:
    worker_id: str
    in_flight: int
    processed: int
    errors: int
    outcomes: dict[str, int]


def runner_runtime(db: Database, settings: Settings, worker_id: str) -> PipelineRuntime:
    """The pipeline's runtime in a worker: the database-shared gate, and models it paces."""
    return gated_runtime(db, settings, owner=worker_id)


class Runner:
    """One worker: claims due leads of running campaigns and runs the pipeline on each."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        mode: str = "standalone",
        concurrency: int | None = None,
        runtime: PipelineRuntime | None = None,
        worker_id: str | None = None,
        process_enrolment: ProcessEnrolmentFn = process_campaign_lead,
    ) -> None:
        self.db = db
        self.settings = settings
        self.mode = mode
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.worker_id = worker_id or new_worker_id()
        self.runtime = runtime or runner_runtime(db, settings, self.worker_id)
        self.process_enrolment = process_enrolment
        self.lease_seconds = float(settings.lease_seconds)
        self.tick_seconds = float(settings.tick_seconds)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="lead")
        self.webhooks = WebhookSender(db, settings, worker_id=self.worker_id)
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._in_flight: set[int] = set()
        self._state_lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._claim_wanted = threading.Event()
        self._stopping = threading.Event()
        self._rotation = 0
        self._processed = 0
        self._errors = 0
        self._outcomes: dict[str, int] = {}
        self._started_at = utcnow()
        self.started = False
        # A finished lead claims the next ones at once, in small batches: one claim per lead
        # would double the write transactions; a tick's wait would leave slots idle.
        self._refill_batch = max(1, min(self.concurrency // 4, settings.claim_batch_size))

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Register the ticks and start them; claiming begins at once."""
        if self.started:
            return
        tick = self.tick_seconds
        lease_tick = max(tick, self.lease_seconds / 4)
        jobs: list[tuple[str, Callable[[], Any], float]] = [
            ("claim", self.claim_tick, tick),
            ("leases", self.lease_tick, lease_tick),
            ("campaigns", self.campaigns_tick, max(tick, 1.0)),
            ("heartbeat", self.heartbeat_tick, max(tick, HEARTBEAT_SECONDS)),
            ("replies", self.replies_tick, max(tick, 1.0)),
            ("api_housekeeping", self.api_housekeeping_tick, max(tick, API_HOUSEKEEPING_SECONDS)),
            ("webhooks", self.webhooks_tick, max(tick, 1.0)),
        ]
        if self.settings.imap_host:
            # Replies and bounces: read only where an inbound mailbox is configured.
            jobs.append(("mailbox", self.mailbox_tick, self.settings.imap_poll_seconds))
        for name, func, seconds in jobs:
            self._scheduler.add_job(
                self._guarded(name, func), "interval", seconds=seconds, id=name,
                max_instances=1, coalesce=True, next_run_time=utcnow(),
            )
        self._scheduler.start()
        self.started = True
        log.info("runner_started", worker_id=self.worker_id, mode=self.mode,
                 concurrency=self.concurrency)

    def stop(self, *, wait: bool = True) -> None:
        """Stop claiming, let the leads in flight finish (when `wait`), remove the heartbeat."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.started:
            self._scheduler.shutdown(wait=wait)
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self.webhooks.stop(wait=wait)
        try:
            with self.db.session(system=True) as session, session.begin():
                session.execute(
                    delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id)
                )
        except Exception:
            log.exception("heartbeat_remove_failed", worker_id=self.worker_id)
        log.info("runner_stopped", worker_id=self.worker_id, processed=self._processed)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stats(self) -> RunnerStats:
        with self._state_lock:
            return RunnerStats(self.worker_id, len(self._in_flight), self._processed,
                               self._errors, dict(self._outcomes))

    def _guarded(self, name: str, func: Callable[[], Any]) -> Callable[[], None]:
        def tick() -> None:
            if self._stopping.is_set():
                return
            try:
                func()
            except Exception as exc:
                # A tick that fails (the database restarting) is tried again at the next one;
                # a database that is away is said in one line a tick, not a traceback.
                if is_transient_database_error(exc):
                    log.warning("tick_interrupted_by_database", tick=name, worker_id=self.worker_id,
                                error=f"{type(exc).__name__}: {exc}")
                else:
                    log.exception("tick_failed", tick=name, worker_id=self.worker_id)

        return tick

    # -- ticks -------------------------------------------------------------------------------

    def claim_tick(self) -> None:
        """Fill the free slots of the pool with due leads."""
        self._claim_wanted.set()
        while self._claim_wanted.is_set() and not self._stopping.is_set():
            if not self._claim_lock.acquire(blocking=False):
                return  # the thread holding it sees the request: it loops while one is set
            try:
                while self._claim_wanted.is_set() and not self._stopping.is_set():
                    self._claim_wanted.clear()
                    self._claim_free_slots()
            finally:
                self._claim_lock.release()

    def _claim_free_slots(self) -> None:
        free = self._free_slots()
        if free <= 0:
            return
        limit = min(free, self.settings.claim_batch_size)
        self._rotation += 1
        claimed = claim_due_enrolments(self.db, worker_id=self.worker_id, limit=limit, now=utcnow(),
                                  lease_seconds=self.lease_seconds, rotation=self._rotation)
        for enrolment_id in claimed:
            with self._state_lock:
                self._in_flight.add(enrolment_id)
            try:
                self._pool.submit(self._run_enrolment, enrolment_id)
            except RuntimeError:
                # The interpreter or the runner is shutting down: the lease expires and
                # another worker (or the next start) takes the enrolment.
                with self._state_lock:
                    self._in_flight.discard(enrolment_id)
                return
        if len(claimed) == limit and limit < free:
            self._claim_wanted.set()

    def _run_enrolment(self, enrolment_id: int) -> None:
        outcome = None
        try:
            with bound(campaign_enrolment_id=enrolment_id, worker_id=self.worker_id):
                outcome = self.process_enrolment(self.db, self.runtime, enrolment_id,
                                            lease_owner=self.worker_id)
        except Exception as exc:
            # Treated like a crash of this one lead: its lease is no longer renewed, so it
            # expires and recovery reconciles a send it may have started, then retries it.
            if is_transient_database_error(exc):
                log.warning("lead_interrupted_by_database", campaign_enrolment_id=enrolment_id,
                            worker_id=self.worker_id, error=f"{type(exc).__name__}: {exc}")
            else:
                log.exception("lead_failed", campaign_enrolment_id=enrolment_id, worker_id=self.worker_id)
        finally:
            with self._state_lock:
                self._in_flight.discard(enrolment_id)
                if outcome is None:
                    self._errors += 1
                else:
                    self._processed += 1
                    self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        if not self._stopping.is_set() and self._free_slots() >= self._refill_batch:
            self.claim_tick()

    def _free_slots(self) -> int:
        with self._state_lock:
            return self.concurrency - len(self._in_flight)

    def lease_tick(self) -> None:
        """Renew this worker's leases, then recover every worker's expired ones."""
        now = utcnow()
        with self._state_lock:
            held = sorted(self._in_flight)
        renew_leases(self.db, worker_id=self.worker_id, enrolment_ids=held, now=now,
                     lease_seconds=self.lease_seconds)
        renew_budget_reservations(self.db, owner=self.worker_id, now=now,
                                  lease_seconds=self.lease_seconds)
        recover_expired_leases(
            self.db, now=now, max_attempts=self.settings.max_lead_attempts,
            lease_seconds=self.lease_seconds,
            reconcile=lambda message_id: reconcile_sending_message(self.db, self.runtime,
                                                                   message_id),
        )
        release_expired_reservations(self.db, now=now)

    def campaigns_tick(self) -> None:
        """Start the scheduled campaigns whose time has come; complete the finished ones."""
        now = utcnow()
        if start_due_campaigns(self.db, now=now):
            self.claim_tick()
        complete_finished_campaigns(self.db, now=now)

    def mailbox_tick(self) -> None:
        """Read the inbound mailbox: replies stored for the reply agent, bounces applied."""
        try:
            poll = poll_mailbox(self.db, self.settings)
        except MailboxUnavailable as exc:
            # Said in one line a poll, not a traceback: the next poll tries again.
            log.warning("mailbox_unavailable", worker_id=self.worker_id, error=str(exc))
            return
        if poll.outcomes or poll.failed:
            log.info("mailbox_read", worker_id=self.worker_id, failed=poll.failed, **poll.outcomes)

    def replies_tick(self) -> None:
        """Run the reply agent on the inbound messages it has not read yet, a batch per tick."""
        process_waiting_replies(self.db, self.runtime, limit=self.settings.claim_batch_size,
                                lease_seconds=reply_lease_seconds(self.settings))

    def api_housekeeping_tick(self) -> None:
        """Forget what the REST API keeps for a while: idempotent answers older than a day, past
        rate-limit windows, refresh tokens expired or revoked a day ago."""
        removed = api_housekeeping(self.db, now=utcnow())
        if removed.idempotency_keys or removed.refresh_tokens:
            log.info("api_housekeeping", worker_id=self.worker_id, idempotency_keys=removed.idempotency_keys,
                     refresh_tokens=removed.refresh_tokens, rate_counters=removed.rate_counters)

    def webhooks_tick(self) -> None:
        """Send the due webhook deliveries (the first attempts, the retries, a dead worker's)."""
        self.webhooks.tick()

    def heartbeat_tick(self) -> None:
        now = utcnow()
        stats = self.stats()
        with self.db.session(system=True) as session, session.begin():
            row = session.get(WorkerHeartbeat, self.worker_id)
            if row is None:
                row = WorkerHeartbeat(worker_id=self.worker_id, hostname=socket.gethostname(),
                                      pid=os.getpid(), mode=self.mode,
                                      started_at=self._started_at)
                session.add(row)
            row.last_seen_at = now
            row.in_flight = stats.in_flight
            row.processed = stats.processed
            session.execute(
                delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < now - STALE_HEARTBEAT)
            )

    # -- until idle --------------------------------------------------------------------------

    def wait_until_idle(self, stop: threading.Event, *, poll_seconds: float | None = None) -> bool:
        """Block until no lead of a running campaign is left to act on now; False if stopped.

        Leads held by a dead worker count as left: their leases are waited out and the leads
        processed after recovery.
        """
        poll = poll_seconds or max(0.05, self.tick_seconds)
        quiet_polls = 0
        while not stop.wait(poll):
            if self.stats().in_flight == 0 and not work_left(self.db, now=utcnow()):
                quiet_polls += 1
                if quiet_polls >= 2:  # twice in a row, so a lead finishing in between counts
                    complete_finished_campaigns(self.db, now=utcnow())
                    return True
            else:
                quiet_polls = 0
        return False


def work_left(db: Database, *, now: datetime) -> bool:
    """Whether a lead of a running campaign is due now or held, a reply waits for the agent, or a
    campaign is due to start."""
    running_lead = and_(
        Campaign.id == CampaignLead.campaign_id,
        Campaign.status == CampaignStatus.running.value,
    )
    lead_left = exists().where(
        running_lead,
        or_(CampaignLead.status == EnrolmentStatus.in_progress.value, due_condition(now)),
    )
    stranded_send = exists().where(Message.status == MessageStatus.sending.value)
    waiting_reply = exists().where(waiting_condition(now, lease_seconds=0))
    due_campaign = exists().where(
        Campaign.status.in_((CampaignStatus.scheduled.value, CampaignStatus.paused.value)),
        Campaign.scheduled_at.is_not(None),
        Campaign.scheduled_at <= now,
    )
    with db.session(system=True, read_only=True) as session:
        return bool(session.scalar(select(or_(lead_left, stranded_send, waiting_reply, due_campaign))))
