"""Structured logging: JSON lines carrying the ids bound where they are known."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.config import ROOT

SCRIPT = """
from core.config import Settings
from core.logs import bound, configure_logging, get_logger
configure_logging(Settings(_env_file=None))
log = get_logger("test")
with bound(tenant_id=7, campaign_id=3, lead_id=None):
    log.info("claimed", leads=5)
log.warning("outside")
"""


def _run(log_format: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "LEADFLOW_LOG_FORMAT": log_format},
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_json_lines_carry_bound_ids() -> None:
    first, second = (json.loads(line) for line in _run("json"))
    assert first["event"] == "claimed"
    assert (first["tenant_id"], first["campaign_id"], first["leads"]) == (7, 3, 5)
    assert "lead_id" not in first  # unknown ids are left out, not logged as null
    assert first["level"] == "info" and "timestamp" in first
    assert second["event"] == "outside" and "tenant_id" not in second


def test_console_format_is_readable() -> None:
    lines = _run("console")
    assert "claimed" in lines[0] and "tenant_id=7" in lines[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])
