"""Fixtures for the runner: fast settings (short leases, a small tick), campaigns ready to run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

import jobs.runner
from core.campaign_runs import start_campaign
from core.campaigns import create_campaign
from core.config import Settings
from core.db import Database
from core.models import CampaignLead, Tenant
from core.permissions import Actor
from jobs.runner import Runner
from tests.conftest import make_settings
from tests.factories import insert_leads, make_actor, make_tenant, zone_at_midday

# No provider limits unless a test sets them: the runner's own behaviour is what is tested here.
RUNNER_SETTINGS: dict[str, Any] = {
    "lease_seconds": 2,
    "tick_seconds": 0.05,
    "worker_concurrency": 8,
    "claim_batch_size": 16,
    "llm_requests_per_minute": 0.0,
    "llm_tokens_per_minute": 0.0,
    "sms_sends_per_second": 0.0,
    "email_sends_per_second": 0.0,
}


class PinnedClock:
    """A clock that moves only when the test moves it (thread-safe: the runner reads it from its ticks)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> PinnedClock:
    """The job runner's clock, pinned: leases expire and follow-ups fall due only when the test
    advances it, however slowly the machine runs the ticks."""
    clock = PinnedClock(datetime.now(UTC))
    monkeypatch.setattr(jobs.runner, "utcnow", clock)
    return clock


@pytest.fixture
def runner_settings(database_url: str) -> Settings:
    return make_settings(database_url, **RUNNER_SETTINGS)


@pytest.fixture
def runner_db(runner_settings: Settings) -> Iterator[Database]:
    database = Database(runner_settings)
    yield database
    database.dispose()


@pytest.fixture
def runners(runner_db: Database) -> Iterator[list[Runner]]:
    """Runners a test starts; all stopped at its end, whatever happens."""
    started: list[Runner] = []
    yield started
    for runner in started:
        runner.stop()


@dataclass(frozen=True)
class RunningCampaign:
    actor: Actor
    campaign_id: int
    lead_ids: list[int]


CampaignMaker = Callable[..., RunningCampaign]


@pytest.fixture
def running_campaign(runner_db: Database) -> CampaignMaker:
    """Build a tenant, `leads` leads inside their send window, and a started campaign."""
    counter = iter(range(1, 1000))

    def make(leads: int, *, channel: str = "sms", start: bool = True,
             tenant_values: dict[str, Any] | None = None, same_tenant_as: RunningCampaign | None = None,
             **fields: Any) -> RunningCampaign:
        """`same_tenant_as` adds a campaign to that tenant, over the same leads."""
        number = next(counter)
        if same_tenant_as is not None:
            actor, lead_ids = same_tenant_as.actor, same_tenant_as.lead_ids
        else:
            tenant_id = make_tenant(runner_db, f"Tenant {number}")
            with runner_db.session(system=True) as session, session.begin():
                session.execute(update(Tenant).where(Tenant.id == tenant_id).values(
                    postal_address="1 Main St, Springfield", **(tenant_values or {})))
            actor = make_actor(runner_db, tenant_id, username=f"owner-{number}")
            lead_ids = insert_leads(runner_db, tenant_id, leads, time_zone=zone_at_midday())
        campaign = create_campaign(runner_db, actor, name=f"Campaign {number}", channel=channel,
                                   **fields)
        if start:
            start_campaign(runner_db, actor, campaign.id)
        return RunningCampaign(actor, campaign.id, lead_ids)

    return make


def lead_statuses(db: Database, campaign_id: int) -> dict[str, int]:
    with db.session(system=True, read_only=True) as session:
        return dict(session.execute(
            select(CampaignLead.status, func.count(CampaignLead.id))
            .where(CampaignLead.campaign_id == campaign_id).group_by(CampaignLead.status)
        ).all())


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, poll: float = 0.05) -> None:
    """Poll until `condition()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(poll)
