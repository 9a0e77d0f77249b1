"""The standalone worker as a real process: --until-idle, SIGKILL mid-campaign, several workers at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from core.config import ROOT
from core.db import Database
from core.models import Campaign, CampaignLead, Message, MessageStatus
from jobs.claims import claim_due_enrolments
from tests.jobs.conftest import RUNNER_SETTINGS, CampaignMaker, lead_statuses, wait_for
from tests.jobs.slow_sender import read_deliveries

CONCURRENCY = 8
KILLS = 3


def _environment(
    database_url: str, deliveries: Path | None = None, send_seconds: float = 0.02
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    env.update({f"LEADFLOW_{name.upper()}": str(value) for name, value in RUNNER_SETTINGS.items()})
    env.update({
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_MIGRATE_ON_START": "false",
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "SLOW_SEND_SECONDS": str(send_seconds),
    })
    if deliveries is not None:
        env["SLOW_SEND_DELIVERIES"] = str(deliveries)
    return env


def _worker(env: dict[str, str], *args: str, module: str = "jobs.worker") -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module, "--concurrency", str(CONCURRENCY), *args],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen[bytes], timeout: float = 120) -> int:
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, stderr.decode()[-3000:]
    return process.returncode


def _messages(db: Database) -> int:
    with db.session(system=True, read_only=True) as session:
        return int(session.scalar(select(func.count(Message.id))) or 0)


def test_until_idle_runs_the_campaign_then_exits_zero(
    runner_db: Database, database_url: str, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(20)
    _finish(_worker(_environment(database_url), "--until-idle"))
    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 20}
    with runner_db.session(system=True, read_only=True) as session:
        assert session.scalar(select(Campaign.status)) == "completed"


def test_a_worker_without_its_model_key_refuses_to_start_and_touches_no_lead(
    runner_db: Database, database_url: str, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(5)
    env = {**_environment(database_url), "LEADFLOW_LLM_PROVIDER": "openai"}
    process = _worker(env, "--until-idle")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "the worker cannot start" in stderr.decode() and "OPENAI_API_KEY" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    # Not a lead failed for a setting: every one waits for a worker that can run it.
    assert lead_statuses(runner_db, campaign.campaign_id) == {"pending": 5}


def test_until_idle_waits_out_the_leases_of_a_dead_worker(
    runner_db: Database, database_url: str, running_campaign: CampaignMaker
) -> None:
    campaign = running_campaign(6)
    claim_due_enrolments(runner_db, worker_id="dead", limit=3, now=datetime.now(UTC),
                    lease_seconds=RUNNER_SETTINGS["lease_seconds"])
    _finish(_worker(_environment(database_url), "--until-idle"))
    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": 6}


def test_sigkill_mid_campaign_loses_no_lead_and_sends_nothing_twice(
    runner_db: Database, database_url: str, running_campaign: CampaignMaker, tmp_path: Path
) -> None:
    """Killed at random moments three times and restarted; runs on SQLite and on PostgreSQL."""
    leads = 1000
    campaign = running_campaign(leads)
    deliveries = tmp_path / "deliveries.txt"
    env = _environment(database_url, deliveries)
    rng = random.Random(os.environ.get("SIGKILL_SEED", "leadflow"))

    for _ in range(KILLS):
        before = _messages(runner_db)
        process = _worker(env, module="tests.jobs.slow_worker")
        # Kill at a random moment once it is really sending, not while it is still importing.
        wait_for(lambda: _messages(runner_db) >= before + 20, timeout=60)  # noqa: B023
        time.sleep(rng.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
    _finish(_worker(env, "--until-idle", module="tests.jobs.slow_worker"), timeout=240)

    statuses = lead_statuses(runner_db, campaign.campaign_id)
    assert set(statuses) <= {"sent", "unknown"} and sum(statuses.values()) == leads
    with runner_db.session(system=True, read_only=True) as session:
        ledger = session.execute(select(Message.campaign_lead_id, Message.step, Message.status,
                                        Message.idempotency_key)).all()
        campaign_status = session.scalar(select(Campaign.status))
    per_step = Counter((row.campaign_lead_id, row.step) for row in ledger)
    assert max(per_step.values()) == 1 and len(per_step) == leads
    delivered = Counter(key for key, _ in read_deliveries(deliveries))
    assert max(delivered.values()) == 1  # no message reached the provider twice
    sent_keys = {row.idempotency_key for row in ledger if row.status == MessageStatus.sent.value}
    assert sent_keys <= set(delivered)  # every `sent` row really was accepted by the provider
    unknown = sum(1 for row in ledger if row.status == MessageStatus.unknown.value)
    assert unknown == statuses.get("unknown", 0) <= KILLS * CONCURRENCY
    assert campaign_status == "completed"
    print(f"SIGKILL x{KILLS}: {statuses}, {len(delivered)} delivered, "
          f"at most {KILLS * CONCURRENCY} unknown allowed")


def test_three_workers_at_once_claim_no_lead_twice(
    postgres_url: str, runner_db: Database, running_campaign: CampaignMaker, tmp_path: Path
) -> None:
    leads = 300
    campaign = running_campaign(leads)
    deliveries = tmp_path / "deliveries.txt"
    env = _environment(postgres_url, deliveries, send_seconds=0.05)
    processes = [_worker(env, "--until-idle", module="tests.jobs.slow_worker") for _ in range(3)]
    for process in processes:
        _finish(process, timeout=240)

    assert lead_statuses(runner_db, campaign.campaign_id) == {"sent": leads}
    with runner_db.session(system=True, read_only=True) as session:
        attempts = Counter(session.scalars(select(CampaignLead.attempts)))
    assert attempts == {1: leads}  # every claim counts an attempt: each lead was claimed once
    delivered = read_deliveries(deliveries)
    assert len({key for key, _ in delivered}) == len(delivered) == leads
    assert len({pid for _, pid in delivered}) == 3  # all three workers took part
