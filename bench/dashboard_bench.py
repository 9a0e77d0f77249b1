"""Dashboard benchmark: seed one large tenant, then time a first render of every page with AppTest.

    python bench/dashboard_bench.py                      # PostgreSQL (full size) and SQLite (a tenth)
    python bench/dashboard_bench.py --only sqlite --reseed

The seed is reused while it is the current seed version at the same size and less than a day old
(the pages' default ranges are "this month"); `--reseed` forces a new one. Each page is rendered
as the owner: once first, in a new process (its own imports, connections and cold database
caches included; Streamlit's and AppTest's own start-up not), then `--runs` times after
clearing `st.cache_data` (what a user gets when nothing is cached), then once more with the
cache warm. The 0.5 s target applies to the first render and to the cold-cache median. The
first row times an empty page: AppTest's own overhead, included in every other figure.
Streamlit's component registry is discovered once per process, as a server does, not once per
AppTest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402 (after the sys.path line)

from bench import seed  # noqa: E402 (after the sys.path line)
from core.config import Settings  # noqa: E402 (after the sys.path line)
from core.db import Database  # noqa: E402 (after the sys.path line)
from core.models import Role  # noqa: E402 (after the sys.path line)
from core.permissions import Actor  # noqa: E402 (after the sys.path line)
from core.tenants import tenant_id_by_name  # noqa: E402 (after the sys.path line)

# The pages app.py's navigation shows come from pages/registry.py: the one list, so every page
# registered there later is timed too. The pages not registered yet are listed here only
# to be timed when their file exists (with a note) or reported as skipped.
PLANNED_PAGES: tuple[tuple[str, str], ...] = (
    ("Leads", "pages/leads.py"),
    ("Campaigns", "pages/campaigns.py"),
    ("Review queue", "pages/review.py"),
    ("Run monitor", "pages/monitor.py"),
    ("Costs", "pages/costs.py"),
    ("Reports", "pages/reports.py"),
    ("Admin", "pages/admin.py"),
)
TARGET_SECONDS = 0.5  # issue 11: every first render under half a second at a million leads
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/lf_dashboard_bench"
DEFAULT_SQLITE_PATH = Path("/tmp/leadflow-dashboard-bench.db")
RESEED_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class PageTiming:
    name: str
    path: str
    first: float | None = None
    cold: float | None = None
    cached: float | None = None
    note: str = ""


def all_pages() -> list[tuple[str, str, str]]:
    """(title, script, note): the registered pages in navigation order, then the planned others."""
    from pages.registry import PAGES

    registered = [(spec.title, spec.script, "") for spec in PAGES]
    scripts = {script for _, script, _ in registered}
    planned = [(title, script, "not in the navigation yet")
               for title, script in PLANNED_PAGES if script not in scripts]
    return [*registered, *planned]


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, database_url=url, migrate_on_start=False,  # type: ignore[call-arg]
                    embedded_runner=False, dev_mode=True)


def _point_pages_at(url: str) -> None:
    from pages import common

    for name, value in {"LEADFLOW_DATABASE_URL": url, "LEADFLOW_DEV_MODE": "true",
                        "LEADFLOW_EMBEDDED_RUNNER": "false",
                        "LEADFLOW_MIGRATE_ON_START": "false"}.items():
        os.environ[name] = value
    common.get_settings.clear()
    common.get_db.clear()


@cache
def _component_manager() -> Any:
    """Streamlit's custom-component registry, discovered once as a server does at startup.

    AppTest otherwise rescans every installed package's metadata for each new AppTest, which
    adds about 0.3 s to every render here and is no part of serving a page.
    """
    from streamlit.components.v2.component_manager import BidiComponentManager

    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


def _render(path: Path, actor: Actor | None) -> tuple[float, str]:
    from streamlit.testing.v1 import AppTest

    from pages.common import ACTOR_KEY

    app = AppTest.from_file(str(path), default_timeout=300)
    app._bidi_component_manager = _component_manager()
    if actor is not None:
        app.session_state[ACTOR_KEY] = asdict(actor)
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    problems = [f"exception: {e.message}" for e in app.exception]
    problems += [f"error: {e.value}" for e in app.error]
    return elapsed, "; ".join(problems)


def first_render_in_new_process(url: str, path: str, actor: Actor) -> tuple[float, str]:
    """The page's first render in a process of its own: its imports and connections included.

    The child first renders an empty page, so Streamlit's and AppTest's own start-up (paid once
    by any server) is not counted; everything the page itself needs is.
    """
    command = [sys.executable, __file__, "--first-render", path, "--url", url,
               "--actor", json.dumps(asdict(actor))]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        return float("nan"), f"exception: the child failed: {done.stderr.strip()[-500:]}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["seconds"]), str(answer["problem"])


def _first_render_child(url: str, path: str, actor_json: str) -> None:
    _point_pages_at(url)
    values = json.loads(actor_json)
    actor = Actor(**{**values, "role": Role(values["role"])})
    harness_floor(runs=0)
    seconds, problem = _render(ROOT / path, actor)
    print(json.dumps({"seconds": seconds, "problem": problem}))


def time_page(name: str, path: str, url: str, actor: Actor, runs: int, note: str = "") -> PageTiming:
    import streamlit as st

    if not (ROOT / path).exists():
        return PageTiming(name, path, note="not built yet: skipped")
    first, first_problem = first_render_in_new_process(url, path, actor)
    cold = []
    for _ in range(runs):
        st.cache_data.clear()
        elapsed, problem = _render(ROOT / path, actor)
        cold.append(elapsed)
    cached, _ = _render(ROOT / path, actor)
    median = statistics.median(cold)
    slowest = max(first, median)
    verdict = first_problem or problem or (
        "ok" if slowest < TARGET_SECONDS else f"over {TARGET_SECONDS:g} s")
    return PageTiming(name, path, first, median, cached, f"{verdict}; {note}" if note else verdict)


def ensure_seeded(db: Database, factor: float, reseed: bool) -> str:
    found = seed.seeded_scale(db)
    expected = seed.Scale.of(factor)
    fresh = found is not None and found.get("leads") == expected.leads and (
        datetime.now(UTC) - datetime.fromisoformat(found["seeded_at"]) < RESEED_AFTER)
    if fresh and not reseed:
        db.migrate()  # indexes added since the seed are built on the data already there
        return f"reused the seed of {found['seeded_at']}"  # type: ignore[index]
    print(f"seeding {db.engine.url.render_as_string(hide_password=True)} at scale {factor:g}:")
    started = time.perf_counter()
    seed.seed(db, factor)
    return f"seeded in {time.perf_counter() - started:.0f} s"


def _counts(db: Database) -> str:
    with db.engine.connect() as conn:
        counts = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                  for t in ("leads", "campaign_leads", "events", "messages", "llm_calls")}
    return ", ".join(f"{n:,} {t.replace('_', ' ')}" for t, n in counts.items())


def ensure_postgres_database(url: str) -> None:
    """Create the benchmark's database when the server does not have it yet."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": target.database}).scalar()
            if not exists:
                print(f"creating database {target.database}")
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def bench_database(label: str, url: str, factor: float, reseed: bool, runs: int) -> list[PageTiming]:
    if url.startswith("postgresql"):
        ensure_postgres_database(url)
    db = Database(_settings(url))
    try:
        how = ensure_seeded(db, factor, reseed)
        tenant_id = tenant_id_by_name(db, seed.BENCH_TENANT)
        with db.engine.connect() as conn:
            version = conn.execute(text(
                "SELECT sqlite_version()" if db.is_sqlite else "SHOW server_version")).scalar_one()
        print(f"\n{label} {version}, scale {factor:g} ({how}): {_counts(db)}")
        print("load average before timing: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        db.dispose()
    _point_pages_at(url)
    owner = Actor(user_id=1, tenant_id=tenant_id, role=Role.owner, username="bench-owner",
                  name="Bench Owner")
    return [harness_floor(runs),
            *(time_page(name, path, url, owner, runs, note) for name, path, note in all_pages())]


def harness_floor(runs: int) -> PageTiming:
    """What AppTest itself costs: a page that imports what the pages import and shows a title."""
    with TemporaryDirectory() as folder:
        script = Path(folder) / "floor.py"
        script.write_text("import pandas\nimport plotly.graph_objects\nimport streamlit as st\n"
                          "st.title('floor')\n")
        first, _ = _render(script, None)
        rest = [_render(script, None)[0] for _ in range(runs + 1)]
    cold = statistics.median(rest[:-1]) if runs else None
    return PageTiming("(AppTest floor)", "an empty page", first, cold, rest[-1],
                      "harness overhead, included in every figure")


def print_table(timings: list[PageTiming], runs: int) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    header = ("page", "file", "first run (s)", f"cold cache, median of {runs} (s)",
              "cached (s)", "result")
    rows = [(t.name, t.path, seconds(t.first), seconds(t.cold), seconds(t.cached), t.note)
            for t in timings]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print(line.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line.format(*row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("LEADFLOW_BENCH_POSTGRES_URL",
                                                                 DEFAULT_POSTGRES_URL))
    parser.add_argument("--sqlite-path", type=Path, default=DEFAULT_SQLITE_PATH)
    parser.add_argument("--only", choices=("postgres", "sqlite"))
    parser.add_argument("--postgres-scale", type=float, default=1.0)
    parser.add_argument("--sqlite-scale", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3, help="cold-cache renders per page")
    parser.add_argument("--reseed", action="store_true", help="seed again even if a seed is there")
    parser.add_argument("--first-render", metavar="SCRIPT", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--actor", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_render:  # the child process of first_render_in_new_process
        _first_render_child(args.url, args.first_render, args.actor)
        return
    targets = []
    if args.only != "sqlite":
        targets.append(("PostgreSQL", args.postgres_url, args.postgres_scale))
    if args.only != "postgres":
        targets.append(("SQLite", f"sqlite:///{args.sqlite_path}", args.sqlite_scale))
    for label, url, factor in targets:
        timings = bench_database(label, url, factor, args.reseed, args.runs)
        print_table(timings, args.runs)


if __name__ == "__main__":
    main()
