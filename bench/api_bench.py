# ruff: noqa: E402
"""API benchmark: /api/v1 latency at a million leads on PostgreSQL, beside a bare FastAPI endpoint.

    python bench/api_bench.py [--requests 300] [--postgres-url URL] [--reseed]

The database is the dashboard benchmark's (bench/seed.py: one tenant with 1,000,000 leads, 20
campaigns, 1,000,000 enrolments, ~700,000 messages), reused while fresh. The service runs as in
production, `uvicorn api.main:create_app --factory` in its own process, with an API key of the
bench tenant (an admin key, created through core for the run and revoked after). One client
sends `--requests` requests of each kind, one after another on a kept-alive connection, after
`--warmup` unmeasured ones, and prints p50 and p99 of each:

- list leads with a filter (`GET /api/v1/leads?tag=vip&limit=50`, each page's cursor followed
  for a few pages, so that deep pages are measured too);
- a campaign's report (`GET /api/v1/campaigns/{id}/report`, the 20 campaigns in turn);
- create a lead (`POST /api/v1/leads`, a new lead each time, with an Idempotency-Key);
- a bare FastAPI endpoint (GET answering a small JSON document), in a second process started the
  same way, measured by the same client before and after the service.

Target (issue 15): p99 under 100 ms for each of the three at a million leads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages come after this line

import httpx
from sqlalchemy import text

from bench import seed
from bench.dashboard_bench import DEFAULT_POSTGRES_URL, ensure_postgres_database, ensure_seeded
from bench.service import server
from core.config import Settings
from core.db import Database
from core.tenants import tenant_id_by_name

TARGET_P99_MS = 100.0
BARE_PATH = "/bare"


def bare_app() -> Any:
    """The comparison: a FastAPI endpoint that answers a small JSON document, nothing else."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get(BARE_PATH)
    def bare() -> dict[str, Any]:
        return {"items": [], "next_cursor": None}

    return app


@dataclass
class Timings:
    samples: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    def percentile_ms(self, share: float) -> float:
        ordered = sorted(self.samples)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def failed(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def measure(
    client: httpx.Client, count: int, warmup: int, request: Callable[[httpx.Client, int], httpx.Response]
) -> Timings:
    timings = Timings()
    for index in range(warmup + count):
        started = time.perf_counter()
        try:
            response = request(client, index)
        except httpx.HTTPError as exc:
            if index >= warmup:
                timings.failed(type(exc).__name__)
            continue
        elapsed = time.perf_counter() - started
        if index < warmup:
            continue
        if response.is_success:
            timings.samples.append(elapsed)
        else:
            timings.failed(str(response.status_code))
    return timings


@dataclass
class Bench:
    base: str
    headers: dict[str, str]
    campaign_ids: list[int]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    cursors: list[str | None] = field(default_factory=lambda: [None])

    def list_leads(self, client: httpx.Client, index: int) -> httpx.Response:
        # The first page, then its cursor followed for four pages, then the first page again.
        cursor = self.cursors[index % len(self.cursors)] if len(self.cursors) == 5 else self.cursors[-1]
        params: dict[str, Any] = {"tag": "vip", "limit": 50}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/v1/leads", params=params, headers=self.headers)
        if response.is_success and len(self.cursors) < 5:
            self.cursors.append(response.json()["next_cursor"])
        return response

    def campaign_report(self, client: httpx.Client, index: int) -> httpx.Response:
        campaign_id = self.campaign_ids[index % len(self.campaign_ids)]
        return client.get(f"/api/v1/campaigns/{campaign_id}/report", headers=self.headers)

    def create_lead(self, client: httpx.Client, index: int) -> httpx.Response:
        lead = {
            "first_name": "Bench",
            "last_name": f"Run {self.run_id}",
            "email": f"api-bench-{self.run_id}-{index}@example.com",
            "phone": f"+1212{2_000_000 + index:07d}",
            "company": "API Bench Co",
        }
        headers = {**self.headers, "Idempotency-Key": f"bench-{self.run_id}-{index}"}
        return client.post("/api/v1/leads", json=lead, headers=headers)


def bench_key(db: Database, tenant_id: int) -> tuple[str, Callable[[], object]]:
    """An admin API key of the bench tenant, and how to revoke it."""
    from core.api_keys import create_api_key, revoke_api_key
    from core.models import Role
    from core.permissions import system_actor

    actor = system_actor(tenant_id)
    created = create_api_key(db, actor, name=f"api-bench-{uuid.uuid4().hex[:6]}", role=Role.admin)
    return created.secret, lambda: revoke_api_key(db, actor, key_id=created.key.id)


def campaign_ids(db: Database, tenant_id: int) -> list[int]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM campaigns WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}
        )
        return [int(row.id) for row in rows]


def row(name: str, timings: Timings) -> tuple[str, str, str, str]:
    failed = sum(timings.failures.values())
    why = ", ".join(f"{count} x {reason}" for reason, count in sorted(timings.failures.items()))
    p99 = timings.percentile_ms(0.99)
    verdict = "" if name.startswith("bare") else ("met" if p99 < TARGET_P99_MS and not failed else "NOT met")
    return (
        name,
        f"{timings.percentile_ms(0.5):.1f} ms",
        f"{p99:.1f} ms",
        f"{len(timings.samples):,} ok, {failed} failed{f' ({why})' if why else ''}"
        + (f"; < {TARGET_P99_MS:g} ms: {verdict}" if verdict else ""),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres-url", default=os.environ.get("LEADFLOW_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = a million leads")
    parser.add_argument("--reseed", action="store_true", help="seed again even if a seed is there")
    parser.add_argument("--requests", type=int, default=300, help="measured requests of each kind")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests of each kind first")
    args = parser.parse_args()

    ensure_postgres_database(args.postgres_url)
    db = Database(Settings(_env_file=None, database_url=args.postgres_url, migrate_on_start=False))  # type: ignore[call-arg]
    try:
        how = ensure_seeded(db, args.scale, args.reseed)
        tenant_id = tenant_id_by_name(db, seed.BENCH_TENANT)
        campaigns = campaign_ids(db, tenant_id)
        with db.engine.connect() as conn:
            leads = conn.execute(
                text("SELECT count(*) FROM leads WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one()
        secret, revoke = bench_key(db, tenant_id)
    except BaseException:
        db.dispose()
        raise
    print(
        f"PostgreSQL, {leads:,} leads in the bench tenant ({how}); "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    # The per-key rate limit stays on (each request counts, as in production), set above the run's rate.
    service_env = {"LEADFLOW_API_RATE_LIMIT": "1000000"}
    results: list[tuple[str, Timings]] = []
    try:
        with (
            server("bench.api_bench:bare_app", args.postgres_url, ready_path=BARE_PATH) as bare_server,
            httpx.Client(base_url=bare_server.base, timeout=30, trust_env=False) as client,
        ):
            bare_before = measure(client, args.requests, args.warmup, lambda c, _i: c.get(BARE_PATH))
        with (
            server("api.main:create_app", args.postgres_url, env=service_env) as service,
            httpx.Client(base_url=service.base, timeout=30, trust_env=False) as client,
        ):
            bench = Bench(service.base, {"X-API-Key": secret}, campaigns)
            results.append(
                (
                    "list leads with a filter (tag, 50 a page)",
                    measure(client, args.requests, args.warmup, bench.list_leads),
                )
            )
            results.append(
                ("a campaign's report", measure(client, args.requests, args.warmup, bench.campaign_report))
            )
            results.append(("create a lead", measure(client, args.requests, args.warmup, bench.create_lead)))
        with (
            server("bench.api_bench:bare_app", args.postgres_url, ready_path=BARE_PATH) as bare_server,
            httpx.Client(base_url=bare_server.base, timeout=30, trust_env=False) as client,
        ):
            bare_after = measure(client, args.requests, args.warmup, lambda c, _i: c.get(BARE_PATH))
    finally:
        revoke()
        with db.engine.begin() as conn:  # the leads the run created, so that runs do not add up
            conn.execute(
                text("DELETE FROM leads WHERE tenant_id = :t AND company = 'API Bench Co'"), {"t": tenant_id}
            )
        db.dispose()
    bare = Timings(
        samples=bare_before.samples + bare_after.samples,
        failures={**bare_before.failures, **bare_after.failures},
    )
    rows = [row(name, timings) for name, timings in results] + [
        row("bare FastAPI endpoint (before and after)", bare)
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'api benchmark'.ljust(width)} | p50 | p99 | requests |")
    print(f"|{'-' * (width + 2)}|-----|-----|----------|")
    for name, p50, p99, note in rows:
        print(f"| {name.ljust(width)} | {p50} | {p99} | {note} |")


if __name__ == "__main__":
    main()
