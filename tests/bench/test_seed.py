"""The benchmark's seed stays loadable as the schema grows, and its data is consistent."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bench import seed
from bench.dashboard_bench import PAGE_FILES, _settings, all_pages
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


def test_every_listed_page_is_timed_and_new_pages_join() -> None:
    pages = all_pages()
    assert pages[: len(PAGE_FILES)] == list(PAGE_FILES)
    assert ("Costs", "pages/costs.py") in pages
    assert all(path.startswith("pages/") and not path.endswith("common.py") for _, path in pages)
