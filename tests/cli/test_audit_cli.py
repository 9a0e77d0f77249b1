"""`audit export`: a tenant's audit log for a range of UTC days, as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from core.audit import record_audit
from core.cli import app
from core.db import Database
from tests.factories import make_tenant


def _entry(db: Database, tenant: int, action: str, when: datetime) -> None:
    with db.session(tenant_id=tenant) as session, session.begin():
        record_audit(session, tenant_id=tenant, user_id=None, action=action, entity="campaign",
                     entity_id=7).created_at = when


def test_exports_the_days_asked_for_to_a_file(cli: CliRunner, db: Database, tmp_path: Path) -> None:
    tenant = make_tenant(db, "Acme")
    other = make_tenant(db, "Other")
    _entry(db, tenant, "start", datetime(2026, 11, 2, 9, tzinfo=UTC))
    _entry(db, tenant, "complete", datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    _entry(db, tenant, "start", datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    _entry(db, other, "start", datetime(2026, 11, 3, tzinfo=UTC))
    out = tmp_path / "audit.csv"
    result = cli.invoke(app, ["audit", "export", "--tenant", "Acme", "--since", "2026-11-01",
                              "--until", "2026-11-30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 entries exported (1 Nov 2026 to 30 Nov 2026 (UTC days))" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["action"], r["entity_id"]) for r in rows] == [("start", "7"), ("complete", "7")]


def test_json_lines_to_stdout_and_a_bad_format(cli: CliRunner, db: Database) -> None:
    tenant = make_tenant(db, "Acme")
    _entry(db, tenant, "pause", datetime(2026, 11, 2, tzinfo=UTC))
    result = cli.invoke(app, ["audit", "export", "--tenant", "Acme", "--action", "pause",
                              "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(e["action"], e["user"]) for e in lines] == [("pause", "system")]
    bad = cli.invoke(app, ["audit", "export", "--tenant", "Acme", "--format", "xml"])
    assert bad.exit_code == 2 and "use csv or jsonl" in bad.output
    reversed_days = cli.invoke(app, ["audit", "export", "--tenant", "Acme", "--since", "2026-11-05",
                                     "--until", "2026-11-01"])
    assert reversed_days.exit_code != 0 and "after the end date" in reversed_days.output
