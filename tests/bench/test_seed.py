"""The benchmark's seed stays loadable as the schema grows, and its data is consistent."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bench import seed
from bench.dashboard_bench import _settings, all_pages
from core.db import Database

FACTOR = 0.001  # 1,000 leads and enrolments, 5,000 events


def test_a_tiny_seed_is_consistent(tmp_path: Path) -> None:
    db = Database(_settings(f"sqlite:///{tmp_path / 'bench.db'}"))
    try:
        written = seed.seed(db, FACTOR, log=lambda _line: None)
        scale = seed.Scale.of(FACTOR)
        assert written["leads"] == scale.leads == 1_000
        assert written["campaign_leads"] == scale.enrolments == 1_000
        assert written["events"] == scale.events == 5_000
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            orphans = conn.execute(text(
                "SELECT count(*) FROM messages m JOIN campaign_leads cl ON cl.id = m.campaign_lead_id "
                "WHERE cl.status != 'sent' AND m.status != 'failed'")).scalar_one()
            assert orphans == 0
            spend = conn.execute(text("SELECT sum(cost_microusd) FROM llm_calls")).scalar_one()
            assert spend == conn.execute(text("SELECT sum(cost_microusd) FROM campaign_leads")).scalar_one()
        found = seed.seeded_scale(db)
        assert found is not None and found["leads"] == scale.leads
    finally:
        db.dispose()


def test_the_registry_decides_which_pages_are_timed() -> None:
    from pages.registry import PAGES

    pages = all_pages()
    assert [script for _, script, _ in pages[: len(PAGES)]] == [spec.script for spec in PAGES]
    scripts = [script for _, script, _ in pages]
    assert len(scripts) == len(set(scripts))  # a planned page once registered is listed once
    assert {"pages/costs.py", "pages/reports.py", "pages/admin.py"} <= set(scripts)
