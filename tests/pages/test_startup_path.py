"""The sign-in page of a freshly started server: it waits for nothing it does not need.

What the first page load of a new server process loads is checked in a new interpreter (where
nothing else has imported it yet): no migration machinery when the database is up to date, no
pandas, no spreadsheet reader, no model stack, no runner, and not every component of
extra-streamlit-components for the one whose frontend it uses. The embedded runner starts in the
background (tests/jobs/test_embedded.py); a failed start still says why the app cannot start.
bench/startup_bench.py times the real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import jobs.embedded
from core.auth import create_first_owner
from core.config import ROOT, ConfigError
from core.db import Database
from tests.conftest import make_settings
from tests.factories import PASSWORD

HEAVY = ("alembic", "pandas", "openpyxl", "langchain_core", "langchain_openai", "langgraph",
         "openai", "apscheduler", "jobs.runner", "extra_streamlit_components")

# A new server's first page load: app.py run once, not signed in, as a browser session does.
PROBE = """
import json, sys
from streamlit.testing.v1 import AppTest
app = AppTest.from_file("app.py", default_timeout=120).run()
heavy = json.loads(sys.argv[1])
print(json.dumps({
    "titles": [t.value for t in app.title],
    "errors": [e.value for e in app.error] + [e.message for e in app.exception],
    "loaded": sorted(m for m in heavy if m in sys.modules),
}))
"""


def _first_page_load(database_url: str, **env: str) -> dict[str, list[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    environment.update(LEADFLOW_DATABASE_URL=database_url, LEADFLOW_DEV_MODE="true",
                       LEADFLOW_EMBEDDED_RUNNER="false", LEADFLOW_EMBEDDED_API="false", **env)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY)], cwd=ROOT,
                          env=environment, capture_output=True, text=True, check=True)
    answer: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.fixture
def migrated_with_owner(tmp_path: Path) -> str:
    """An up-to-date SQLite database with an owner: what a restart finds."""
    url = f"sqlite:///{tmp_path / 'leadflow.db'}"
    database = Database(make_settings(url))
    database.migrate()
    create_first_owner(database, tenant_name="Acme", default_country="US", username="olga",
                       name="Olga Owner", email=None, password=PASSWORD)
    database.dispose()
    return url


def test_the_sign_in_page_of_a_restarted_server_loads_nothing_heavy(migrated_with_owner: str) -> None:
    # Migrate-on-start is on, as in production: an up-to-date database needs no Alembic.
    answer = _first_page_load(migrated_with_owner, LEADFLOW_MIGRATE_ON_START="true")
    assert answer["titles"] == ["Sign in to Leadflow"] and answer["errors"] == []
    assert answer["loaded"] == []


def test_the_probe_sees_alembic_when_the_database_needs_migrating(tmp_path: Path) -> None:
    answer = _first_page_load(f"sqlite:///{tmp_path / 'new.db'}", LEADFLOW_MIGRATE_ON_START="true")
    assert answer["titles"] == ["Welcome to Leadflow"] and answer["errors"] == []
    assert answer["loaded"] == ["alembic"]


def test_a_failed_background_start_of_the_runner_says_the_app_cannot_start(
    page_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_EMBEDDED_RUNNER", "true")
    monkeypatch.setattr(jobs.embedded, "start_embedded_runner", lambda settings, after=None: None)
    monkeypatch.setattr(jobs.embedded, "_failure", ConfigError("OPENAI_API_KEY is not set"))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    assert [e.value for e in app.error] == ["Leadflow cannot start: OPENAI_API_KEY is not set."]
    assert not app.text_input
