"""The README's curl walk-through of /api/v1 runs as it stands: sign in, import, create, start,
poll until the run has finished, read the messages sent, against a real server and runner."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import ROOT, Settings
from core.db import Database
from core.models import Role
from core.permissions import system_actor
from core.tenant_settings import update_tenant_settings
from jobs.runner import Runner
from tests.api.v1.conftest import V1Api
from tests.factories import PASSWORD, make_actor, make_tenant, zone_at_midday

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- api-walkthrough -->\n```bash\n(.*?)```", re.S)
LEADS = ("+14155550128", "+14155550129", "+14155550130")

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="the walk-through needs curl and jq"
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    from tests.conftest import make_settings

    return make_settings(database_url, tick_seconds=0.1, lease_seconds=5)


@pytest.fixture
def runner(db: Database, settings: Settings) -> Iterator[Runner]:
    runner = Runner(db, settings)
    runner.start()
    yield runner
    runner.stop()


def test_the_readme_walkthrough_runs_from_a_spreadsheet_to_the_messages_sent(
    v1: V1Api, db: Database, runner: Runner, tmp_path: Path
) -> None:
    tenant_id = make_tenant(db)
    update_tenant_settings(db, system_actor(tenant_id), {"sms_sender_id": "+14155550100"})
    make_actor(db, tenant_id, Role.admin, username="ada")
    zone = zone_at_midday()  # every send window open, whenever the test runs
    rows = [f"Lead{i},Example{i},{phone},Acme {i},{zone}" for i, phone in enumerate(LEADS)]
    (tmp_path / "leads.csv").write_text(
        "first_name,last_name,phone,company,time_zone\n" + "\n".join(rows) + "\n"
    )
    match = BLOCK.search(README)
    assert match is not None, "README.md has no api-walkthrough block"
    script = match.group(1).replace("API=http://localhost:8502/api/v1", f"API={v1.base}", 1)
    assert f"API={v1.base}" in script
    env = {**os.environ, "PASSWORD": PASSWORD}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert '"imported": 3' in out and '"rejected": 0' in out
    assert "\nrunning\n" in out  # what the start answered
    sent = [line for line in out.splitlines() if line.startswith('{"to":')]
    assert sorted(line.split('"')[3] for line in sent) == sorted(LEADS)
    assert all('"status":"sent"' in line for line in sent), sent
    assert all("Lead" in line for line in sent)  # each message is written to its lead
