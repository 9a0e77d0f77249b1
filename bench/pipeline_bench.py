"""Pipeline benchmark: the bare compiled graph with no-op nodes vs the full pipeline on SQLite.

    python bench/pipeline_bench.py [--leads 5000] [--bare 5000] [--model-latency 0]

Bare: the same compiled StateGraph (same edges and routers) with every node a no-op,
invocations per second. Full: 5,000 enrolled leads through validate -> research -> compose ->
guard -> approval -> send -> finalize with the offline model and the outbox sender on a fresh
SQLite file, claimed in batches as the runner would, every database write included (the run's
inputs read, the `sending` ledger row, the outbox record, then the outcome with its events, model
calls and the row marked `sent`: three transactions, as for any provider).
Target: the full pipeline at 40% or more of the bare graph's rate.

`--model-latency MS` makes every model call wait that long before the offline model answers, as a
hosted model's round trip does (300 ms is typical): then the database work's share of a lead's
time shows at its real size. The default, 0, keeps the figures comparable with earlier runs.

The two are measured interleaved, batch by batch (100 bare invocations after 10 untimed ones,
then a claimed batch of 100 leads, and again), so that both see the same load on a machine
whose cores are shared: measured one after the other, a change of load between the two phases
moved the ratio by several points.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, update

from core.config import Settings
from core.db import Database
from core.llm.offline import OfflineChatModel
from core.models import Campaign, CampaignLead, EnrolmentStatus, Lead, Message, Tenant
from core.pipeline.graph import PipelineNodes, build_pipeline
from core.pipeline.service import PipelineRuntime, process_campaign_lead

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
WORKER = "bench-worker"
CLAIM_BATCH = 100
BARE_WARM_UP_PER_BATCH = 10


class SlowOfflineModel(OfflineChatModel):
    """The offline model behind a fixed round trip, as a hosted model answers."""

    latency_seconds: float = 0.0

    def reply(self, messages: Any, *, max_tokens: int | None = None) -> Any:
        time.sleep(self.latency_seconds)
        return super().reply(messages, max_tokens=max_tokens)


def bench_runtime(settings: Settings, db: Database, model_latency_ms: float) -> PipelineRuntime:
    """The runtime a worker builds, with the offline model slowed to `model_latency_ms` per call."""
    runtime = PipelineRuntime.from_settings(settings, db, now=lambda: NOW)
    if model_latency_ms:
        runtime.models = SlowOfflineModel(latency_seconds=model_latency_ms / 1000)
    return runtime


def no_op(state: dict[str, Any]) -> dict[str, Any]:
    return {}


def bare_graph() -> Any:
    return build_pipeline(PipelineNodes(no_op, no_op, no_op, no_op, no_op, no_op, no_op))


# A state the routers send through every node once, as a lead that is sent does.
BARE_STATE = {
    "trace_id": "bench",
    "draft_body": "x",
    "guard": {"passed": True},
    "events": [],
    "llm_calls": [],
}


def time_bare(graph: Any, invocations: int) -> float:
    """Seconds for this many invocations of the bare graph."""
    started = time.perf_counter()
    for _ in range(invocations):
        graph.invoke(BARE_STATE)
    return time.perf_counter() - started


def seed(db: Database, leads: int) -> tuple[int, list[int]]:
    with db.session(system=True) as session, session.begin():
        tenant = Tenant(
            name="Bench",
            postal_address="1 Main St",
            link_allow_list=["acme.example"],
            playbook={"default": {"proof_points": ["Teams using Leadflow book 30% more meetings"]}},
        )
        session.add(tenant)
        session.flush()
        campaign = Campaign(
            tenant_id=tenant.id,
            name="Bench",
            channel="sms",
            status="running",
            model="gpt-4o-mini",
            system_prompt="Write a friendly intro to Leadflow.",
            steps=[{"delay_hours": 0}],
        )
        session.add(campaign)
        session.flush()
        session.execute(
            insert(Lead),
            [
                {
                    "tenant_id": tenant.id,
                    "first_name": f"Lead{i}",
                    "last_name": "Bench",
                    "company": f"Company {i}",
                    "title": "Head of Sales",
                    "industry": "Software",
                    "phone": f"+1212555{i:04d}",
                    "time_zone": "America/New_York",
                    "custom_fields": {},
                }
                for i in range(leads)
            ],
        )
        lead_ids = session.scalars(select(Lead.id).where(Lead.tenant_id == tenant.id).order_by(Lead.id)).all()
        session.execute(
            insert(CampaignLead),
            [
                {
                    "tenant_id": tenant.id,
                    "campaign_id": campaign.id,
                    "lead_id": lead_id,
                    "research": [],
                    "guard_result": {},
                }
                for lead_id in lead_ids
            ],
        )
        ids = session.scalars(select(CampaignLead.id).order_by(CampaignLead.id)).all()
    return tenant.id, list(ids)


def claim(db: Database, ids: list[int]) -> None:
    """One UPDATE per batch, as the runner claims work."""
    with db.session(system=True) as session, session.begin():
        session.execute(
            update(CampaignLead)
            .where(CampaignLead.id.in_(ids))
            .values(
                status=EnrolmentStatus.in_progress.value,
                lease_owner=WORKER,
                lease_expires_at=NOW + timedelta(minutes=2),
                attempts=CampaignLead.attempts + 1,
            )
        )


def bench(
    leads: int, bare_invocations: int, workdir: Path, model_latency_ms: float = 0
) -> tuple[float, float, dict[str, int]]:
    """(bare invocations/s, full pipeline leads/s, outcomes), measured batch by batch in turn."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{workdir / 'bench.db'}",  # type: ignore[call-arg]
        migrate_on_start=False,
        embedded_runner=False,
    )
    db = Database(settings)
    db.migrate()
    _, ids = seed(db, leads)
    runtime = bench_runtime(settings, db, model_latency_ms)
    graph = bare_graph()
    time_bare(graph, 200)  # warm-up
    batches = [ids[start : start + CLAIM_BATCH] for start in range(0, len(ids), CLAIM_BATCH)]
    bare_per_batch = [
        bare_invocations // len(batches) + (1 if i < bare_invocations % len(batches) else 0)
        for i in range(len(batches))
    ]
    statuses: dict[str, int] = {}
    bare_seconds = full_seconds = 0.0
    for batch, invocations in zip(batches, bare_per_batch, strict=True):
        # Untimed: the bare graph's first invocations after a batch of leads run with cold CPU
        # caches, which would flatter the ratio; the leads get no such warm-up.
        time_bare(graph, BARE_WARM_UP_PER_BATCH)
        bare_seconds += time_bare(graph, invocations)
        started = time.perf_counter()
        claim(db, batch)
        for campaign_lead_id in batch:
            status = process_campaign_lead(db, runtime, campaign_lead_id, lease_owner=WORKER)
            statuses[status] = statuses.get(status, 0) + 1
        full_seconds += time.perf_counter() - started
    with db.session(system=True, read_only=True) as session:
        statuses["messages sent"] = (
            session.scalar(select(func.count(Message.id)).where(Message.status == "sent")) or 0
        )
    db.dispose()
    return bare_invocations / bare_seconds, leads / full_seconds, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--bare", type=int, default=5000, help="bare-graph invocations")
    parser.add_argument(
        "--model-latency", type=float, default=0, metavar="MS", help="milliseconds each model call waits"
    )
    args = parser.parse_args()
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        bare, full, statuses = bench(args.leads, args.bare, Path(tmp), args.model_latency)
    ratio = full / bare
    rows = [
        ("bare compiled graph, no-op nodes", f"{bare:,.0f} invocations/s"),
        (
            f"full pipeline, {args.leads:,} leads "
            f"(offline, {args.model_latency:g} ms a model call, outbox, SQLite)",
            f"{full:,.1f} leads/s",
        ),
        ("ratio full / bare", f"{ratio:.0%} (target >= 40%: {'met' if ratio >= 0.4 else 'NOT met'})"),
        ("outcomes", ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items()))),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
