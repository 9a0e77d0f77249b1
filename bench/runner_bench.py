# ruff: noqa: E402
"""Runner benchmark: one worker against a rate-limited model server, a sequential baseline, memory.

    python bench/runner_bench.py [--leads 2000] [--rate 20] [--latency 1.0] [--concurrency 64]

1. A 2,000-lead SMS campaign, two model calls per lead (research condensation and compose),
   with the `openai` provider pointed at the tests' OpenAI-compatible server (in its own
   process), which answers after `--latency` seconds and with 429 + Retry-After above `--rate`
   requests per second. Printed: elapsed, the bound max(N x calls / R, N x calls x latency /
   concurrency), their ratio, the rate used, the share of requests answered 429. Run twice: on
   a quiet machine, and with a busy-loop process holding one core (`--no-busy` skips it).
2. The sequential baseline: the same at concurrency 1, timed on 50 leads and extrapolated.
3. Memory: a 20,000-lead run (offline model: no HTTP, so it is as fast as the pipeline allows),
   with the process's RSS sampled as it goes.

Everything runs on a fresh SQLite file (or `--database-url`, emptied first). Leadflow's own limit
is the server's rate times `--headroom` (default 1.0): GCRA paces evenly, and the limit adapts
(AIMD, core.gate) to the 429s that the jitter of threads waking up still draws.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages come after this line

from sqlalchemy import delete, func, select, text, update

from core.campaign_runs import start_campaign
from core.campaigns import create_campaign
from core.config import Settings
from core.db import Database
from core.gate import model_requests_key
from core.logs import configure_logging
from core.models import CampaignLead, RateLimit, Tenant
from jobs.runner import Runner
from jobs.worker import WORKER_SWITCH_INTERVAL
from tests.factories import insert_leads, make_actor, make_tenant
from tests.jobs.conftest import zone_at_midday

CALLS_PER_LEAD = 2
MODEL = "gpt-4o-mini"  # the campaigns' default model


def _serve(latency: float, rate: float, ready: Any, commands: Any) -> None:
    """The fake OpenAI server, in its own process so it does not share the worker's GIL."""
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI(latency=latency, rps_limit=rate, retry_after_seconds=1.0) as server:
        ready.send(server.base_url)
        while True:
            command = commands.recv()
            if command == "counters":
                commands.send((server.requests, server.rate_limited, server.max_in_flight))
            elif command == "reset":
                server.reset_counters()
                commands.send(None)
            else:
                return


class ModelServer:
    def __init__(self, latency: float, rate: float) -> None:
        context = multiprocessing.get_context("spawn")
        ready_here, ready_there = context.Pipe()
        self._commands, commands_there = context.Pipe()
        self._process = context.Process(target=_serve, args=(latency, rate, ready_there, commands_there),
                                        daemon=True)
        self._process.start()
        self.base_url: str = ready_here.recv()

    def counters(self) -> tuple[int, int, int]:
        self._commands.send("counters")
        return self._commands.recv()  # type: ignore[no-any-return]

    def reset(self) -> None:
        self._commands.send("reset")
        self._commands.recv()

    def stop(self) -> None:
        self._commands.send("stop")
        self._process.join(5)


def _spin() -> None:
    while True:
        pass


class BusyLoop:
    """A process that holds one core for as long as it runs."""

    def __enter__(self) -> BusyLoop:
        self._process = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        self._process.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.join(5)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fresh_database(url: str | None) -> tuple[Database, str]:
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='leadflow-bench-')}/bench.db"
    db = Database(Settings(_env_file=None, database_url=url, migrate_on_start=False))  # type: ignore[call-arg]
    if db.is_sqlite:
        db.migrate()
    else:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        db.migrate()
    return db, url


_tenants = iter(range(1, 1000))


def make_campaign(db: Database, leads: int) -> int:
    number = next(_tenants)
    tenant_id = make_tenant(db, f"Bench {number}")
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant_id)
                        .values(postal_address="1 Main St, Springfield"))
    actor = make_actor(db, tenant_id, username=f"bench-{number}")
    for start in range(0, leads, 10_000):
        insert_leads(db, tenant_id, min(10_000, leads - start), start=start,
                     time_zone=zone_at_midday(), industry="Logistics", city="Chicago",
                     website=None, notes="Runs a fleet of 40 trucks across the Midwest.")
    campaign = create_campaign(db, actor, name=f"Bench {number}", channel="sms")
    start_campaign(db, actor, campaign.id)
    return campaign.id


def open_leads(db: Database, campaign_id: int) -> int:
    with db.session(system=True, read_only=True) as session:
        return int(session.scalar(select(func.count(CampaignLead.id)).where(
            CampaignLead.campaign_id == campaign_id,
            CampaignLead.status.in_(("pending", "in_progress", "deferred", "approved")))) or 0)


def run_campaign(db: Database, settings: Settings, campaign_id: int, concurrency: int,
                 on_poll: Any = None) -> tuple[float, dict[str, int]]:
    runner = Runner(db, settings, concurrency=concurrency, worker_id=f"bench-{campaign_id}")
    started = time.monotonic()
    runner.start()
    try:
        while (left := open_leads(db, campaign_id)) > 0:
            if on_poll is not None:
                on_poll(left, time.monotonic() - started)
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        runner.stop()
    with db.session(system=True, read_only=True) as session:
        statuses = dict(session.execute(
            select(CampaignLead.status, func.count(CampaignLead.id))
            .where(CampaignLead.campaign_id == campaign_id).group_by(CampaignLead.status)).all())
    return elapsed, statuses


def rate_share(db: Database) -> float:
    """The share of the configured model request rate in use (AIMD), as the run left it."""
    with db.session(system=True, read_only=True) as session:
        key = model_requests_key(MODEL)
        share = session.scalar(select(RateLimit.rate_factor).where(RateLimit.key == key))
    return float(share if share is not None else 1.0)


def bench_settings(url: str, **values: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": url, "migrate_on_start": False, "embedded_runner": False,
        "log_level": "WARNING", "tick_seconds": 0.2, "lease_seconds": 120,
        "llm_tokens_per_minute": 0.0, "sms_sends_per_second": 0.0, "email_sends_per_second": 0.0,
        "claim_batch_size": 64,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def row(name: str, value: str) -> None:
    print(f"| {name:<52} | {value:>22} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0, help="server limit, requests/s")
    parser.add_argument("--latency", type=float, default=1.0, help="server answer time, s")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--headroom", type=float, default=1.0)
    parser.add_argument("--no-busy", action="store_true", help="skip the run beside a busy-loop process")
    parser.add_argument("--baseline-leads", type=int, default=50)
    parser.add_argument("--memory-leads", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)  # as `python -m jobs.worker` does
    db, url = fresh_database(args.database_url)
    configure_logging(bench_settings(url))
    server = ModelServer(args.latency, args.rate)
    openai = {"llm_provider": "openai", "openai_base_url": server.base_url,
              "openai_api_key": "bench-key", "llm_requests_per_minute": args.rate * 60 * args.headroom}
    print(f"database: {db.engine.url.render_as_string(hide_password=True)}; "
          f"started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")

    # 1. The campaign at full concurrency: on a quiet machine, then beside a busy loop.
    concurrent: list[tuple[str, float, dict[str, int], int, int, int, float]] = []
    for label in ("quiet", "busy")[: 1 if args.no_busy else 2]:
        campaign_id = make_campaign(db, args.leads)
        with db.session(system=True) as session, session.begin():
            session.execute(delete(RateLimit))  # each run starts at the configured rate
        server.reset()
        with BusyLoop() if label == "busy" else contextlib.nullcontext():
            elapsed, statuses = run_campaign(db, bench_settings(url, **openai), campaign_id, args.concurrency)
        concurrent.append((label, elapsed, statuses, *server.counters(), rate_share(db)))
    calls = args.leads * CALLS_PER_LEAD
    bound = max(calls / args.rate, calls * args.latency / args.concurrency)

    # 2. The sequential baseline.
    baseline_id = make_campaign(db, args.baseline_leads)
    server.reset()
    baseline, baseline_statuses = run_campaign(db, bench_settings(url, **openai), baseline_id, 1)
    baseline_requests, _, _ = server.counters()
    server.stop()

    # 3. Memory over a long run.
    memory_id = make_campaign(db, args.memory_leads)
    samples: list[tuple[int, float, float]] = []
    next_sample = [0.0]

    def sample(left: int, at: float) -> None:
        if at >= next_sample[0]:
            samples.append((args.memory_leads - left, at, rss_mb()))
            next_sample[0] = at + 10.0

    memory_elapsed, memory_statuses = run_campaign(
        db, bench_settings(url, llm_requests_per_minute=0.0), memory_id, args.concurrency, sample)
    samples.append((args.memory_leads, memory_elapsed, rss_mb()))

    print()
    print(f"| {'runner benchmark':<52} | {'value':>22} |")
    print(f"|{'-' * 54}|{'-' * 24}|")
    row("leads (N) x model calls per lead", f"{args.leads} x {CALLS_PER_LEAD}")
    row("server: latency / rate limit (R)", f"{args.latency:g} s / {args.rate:g} req/s")
    own_limit = f"{args.concurrency} / {args.rate * args.headroom:g} req/s"
    row("worker concurrency / Leadflow's configured limit", own_limit)
    for label, elapsed, statuses, requests, limited, max_in_flight, share in concurrent:
        answered = requests - limited
        row(f"{label} machine" + (": a busy-loop process holds one core" if label == "busy" else ""), "")
        row("  outcome", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        row("  elapsed", f"{elapsed:.1f} s")
        row("  bound max(N*calls/R, N*calls*latency/concurrency)", f"{bound:.1f} s")
        row("  elapsed / bound (target <= 1.2)", f"{elapsed / bound:.3f}")
        row("  rate used: answered requests/s / R (target >= 95%)", f"{answered / elapsed / args.rate:.1%}")
        share_429 = f"{limited}/{requests} = {limited / max(requests, 1):.2%}"
        row("  requests answered 429 (target < 1%)", share_429)
        row("  most requests in flight at the server", f"{max_in_flight}")
        row("  share of the configured rate at the end (AIMD)", f"{share:.1%}")
    row(f"sequential baseline: {args.baseline_leads} leads at concurrency 1", f"{baseline:.1f} s")
    row("  its requests / outcome", f"{baseline_requests} / " + ", ".join(
        f"{k} {v}" for k, v in sorted(baseline_statuses.items())))
    extrapolated = baseline / args.baseline_leads * args.leads
    row(f"  extrapolated to {args.leads} leads", f"{extrapolated:.0f} s")
    row("  speed-up of the quiet concurrent run", f"{extrapolated / concurrent[0][1]:.1f}x")
    row(f"memory run: {args.memory_leads} leads, offline model", f"{memory_elapsed:.0f} s")
    row("  outcome", ", ".join(f"{k} {v}" for k, v in sorted(memory_statuses.items())))
    print()
    print("| leads done | seconds | RSS MB |")
    print("|-----------:|--------:|-------:|")
    step = max(1, len(samples) // 12)
    for done, at, rss in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"| {done:>10} | {at:>7.0f} | {rss:>6.1f} |")
    quarter = max(1, len(samples) // 4)
    early = sum(s[2] for s in samples[quarter:2 * quarter]) / max(1, len(samples[quarter:2 * quarter]))
    late = sum(s[2] for s in samples[-quarter:]) / quarter
    print(f"\nRSS, second quarter mean {early:.1f} MB -> last quarter mean {late:.1f} MB "
          f"({(late - early) / early:+.1%})")
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
