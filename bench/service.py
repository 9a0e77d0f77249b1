"""A service under benchmark: `uvicorn TARGET --factory` in its own processes, as production runs it.

Both HTTP benchmarks (inbound_bench, api_bench) start the service and their bare FastAPI
comparison the same way: on a free port of 127.0.0.1, with the environment cleared of the
developer's LEADFLOW_ and OPENAI_ settings, the keep-alive `python -m api` serves with
(api/server.py), uvicorn's log (info, no access log: a worker that died is said there) kept in a
file, and the process group stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.server import uvicorn_options
from core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SERVED = uvicorn_options(Settings(_env_file=None))  # type: ignore[call-arg]


@dataclass
class Server:
    base: str
    log: Path  # the service's stderr: uvicorn's and the app's warnings and tracebacks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(
    target: str,
    url: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    ready_path: str = "/api/health",
) -> Iterator[Server]:
    """The app `target` (a factory) serving database `url` until the block ends; `env` adds settings."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    environment.update(
        LEADFLOW_DATABASE_URL=url,
        LEADFLOW_LOG_LEVEL="WARNING",
        LEADFLOW_MIGRATE_ON_START="false",
        LEADFLOW_COOKIE_KEY=secrets.token_urlsafe(48),
        PYTHONPATH=str(ROOT),
        **(env or {}),
    )
    command = [
        sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--log-level", "info", "--no-access-log",
        "--timeout-keep-alive", str(SERVED["timeout_keep_alive"]),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="leadflow_bench_") as folder:
        log = Path(folder) / "server.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stderr=stderr, start_new_session=True
            )
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{target} exited with {process.returncode}:\n{log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}{ready_path}", timeout=2).status_code in (200, 404):
                        break
                time.sleep(0.2)
            yield Server(base, log)
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)
