"""The README's commands are the ones that work: the app command serves the dashboard."""

from __future__ import annotations

import os
import re
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
