"""The README's commands are the ones that work: the app command serves the dashboard."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.config import ROOT

README = (ROOT / "README.md").read_text()
APP_COMMAND = re.compile(
    r"^    (python -m pip install -r requirements\.txt && (.*streamlit run app\.py))$", re.M
)
TEST_COMMAND = "python -m pip install -r requirements-dev.txt && python -m pytest"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dockerfile_healthcheck(port: int) -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    command = re.search(r'CMD python -c "(.+)"', text)
    assert command is not None
    return [sys.executable, "-c", command.group(1).replace("8501", str(port))]


def test_readme_has_both_commands_and_ci_runs_the_test_one() -> None:
    assert APP_COMMAND.search(README)
    assert f"\n    {TEST_COMMAND}\n" in README
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_app_command_serves_the_dashboard(tmp_path: Path) -> None:
    """Runs the README's app command (less the install, done already) on a fresh SQLite file."""
    match = APP_COMMAND.search(README)
    assert match is not None
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    env.update(LEADFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'readme.db'}",
               LEADFLOW_EMBEDDED_RUNNER="false")
    command = f"{match.group(2)} --server.port {port} --server.headless true"
    server = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"the app did not come up: {output[-2000:]}")
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200
            assert b"<title>Streamlit</title>" in page.read()
        assert subprocess.run(_dockerfile_healthcheck(port), timeout=30).returncode == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        server.wait(timeout=30)


def _cli_lines() -> list[str]:
    """The README's command-line examples, in order, but for the production section (which
    starts long-running workers against a server of its own)."""
    sections = README.split("\n## ")
    lines: list[str] = []
    for section in sections:
        if section.startswith("Run it in production"):
            continue
        lines += re.findall(r"^    ((?:echo .*\| )?python -m (?:core\.cli|jobs\.worker) .*)$", section, re.M)
    return lines


def test_readme_command_line_examples_run_as_written(tmp_path: Path) -> None:
    """Every example, in the README's order, on a fresh SQLite file: the docs cannot rot."""
    lines = _cli_lines()
    assert any("campaigns start" in line for line in lines) and any("leads import" in line for line in lines)
    (tmp_path / "data").mkdir()
    shutil.copyfile(ROOT / "data" / "sample_leads.csv", tmp_path / "data" / "sample_leads.csv")
    (tmp_path / "stop-list.csv").write_text("phone\n+14155550187\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    env.update(LEADFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'readme.db'}", PYTHONPATH=str(ROOT),
               PASSWORD="correct horse battery", LEADFLOW_TICK_SECONDS="0.2")
    for line in lines:
        result = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=240)
        assert result.returncode == 0, f"{line}\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
    status = subprocess.run(["bash", "-c", "python -m core.cli campaigns status 1 --json"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    progress = json.loads(status.stdout)
    assert progress["messages_by_status"].get("sent", 0) > 0
    assert progress["cost_microusd"] > 0
