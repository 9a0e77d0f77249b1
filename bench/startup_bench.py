"""Start-up benchmark: how long after `streamlit run app.py` a browser shows the first screen.

    python bench/startup_bench.py              # 3 starts of each kind
    python bench/startup_bench.py --runs 5

Starts the real app as the README does (`streamlit run app.py`, SQLite, the embedded runner
on), polls `/_stcore/health` until the server answers, then opens the app in a headless
Chromium (started before the server, so its own start-up is not counted) and times until the
first screen's form is on the page and until the script run that drew it has finished. Two
kinds of start: a restart on a migrated database with an owner (the sign-in form), and a first
start on an empty file (the migrations, then the first-owner form). The target: the form within
2 s of the server being healthy. A third kind, "floor", starts a script that only draws a button:
what Streamlit and the browser take on this machine whatever the app does.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
TARGET_SECONDS = 2.0
START_TIMEOUT_SECONDS = 120.0
PASSWORD = "correct horse battery"
KINDS = ("restart", "first", "floor")


@dataclass(frozen=True)
class Start:
    kind: str
    healthy: float  # from the command to the first answer of /_stcore/health
    form: float  # from healthy to the first screen's button on the page
    idle: float  # from healthy to the end of the script run that drew it


def prepare_existing(db_file: Path) -> None:
    """A migrated database with a tenant and its owner, as any restart finds it."""
    from core.auth import create_first_owner
    from core.config import Settings
    from core.db import open_database

    settings = Settings(_env_file=None, database_url=f"sqlite:///{db_file}",  # type: ignore[call-arg]
                        embedded_runner=False, dev_mode=True)
    db = open_database(settings)
    try:
        create_first_owner(db, tenant_name="Bench Inc.", default_country="US", username="bench",
                           name="Bench Owner", email=None, password=PASSWORD)
    finally:
        db.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the app did not start: {log.read_text()[-3000:]}")
        time.sleep(0.02)


FLOOR_SCRIPT = "import streamlit as st\nst.button('Sign in')\n"


def time_start(browser: Any, kind: str, folder: Path) -> Start:
    db_file = folder / f"{kind}.db"
    db_file.unlink(missing_ok=True)
    script = "app.py"
    if kind == "restart":
        prepare_existing(db_file)
    elif kind == "floor":
        script = str(folder / "floor.py")
        Path(script).write_text(FLOOR_SCRIPT)
    button = "Create the owner account" if kind == "first" else "Sign in"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFLOW_", "OPENAI_"))}
    env.update(LEADFLOW_DATABASE_URL=f"sqlite:///{db_file}", LEADFLOW_DEV_MODE="true")
    log = folder / f"{kind}.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            ["streamlit", "run", script, "--server.port", str(port), "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(url, process, log)
            healthy = time.perf_counter()
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(START_TIMEOUT_SECONDS * 1000)
            page.goto(url)
            page.get_by_role("button", name=button).wait_for()
            form = time.perf_counter()
            page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
            idle = time.perf_counter()
            context.close()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    return Start(kind, healthy - started, form - healthy, idle - healthy)


def print_table(starts: list[Start]) -> None:
    header = ("start", "runs", "command to healthy (s)", "healthy to form (s)",
              "healthy to run finished (s)", "result")
    rows = []
    for kind in dict.fromkeys(s.kind for s in starts):
        mine = [s for s in starts if s.kind == kind]

        def spread(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

        slowest = max(s.form for s in mine)
        verdict = "ok" if slowest < TARGET_SECONDS else f"over {TARGET_SECONDS:g} s"
        rows.append((kind, str(len(mine)), spread([s.healthy for s in mine]),
                     spread([s.form for s in mine]), spread([s.idle for s in mine]), verdict))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print(line.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line.format(*row))
    print("figures: median (fastest-slowest); the result compares the slowest healthy-to-form "
          f"with the {TARGET_SECONDS:g} s target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts of each kind")
    parser.add_argument("--kind", choices=KINDS, action="append",
                        help="only this kind of start (repeatable); all by default")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    kinds = args.kind or list(KINDS)
    print("load average before timing: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    starts = []
    with TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(args.runs):
                for kind in kinds:
                    start = time_start(browser, kind, Path(folder))
                    print(f"{kind}: healthy after {start.healthy:.2f} s, form {start.form:.2f} s "
                          f"and run finished {start.idle:.2f} s after that", flush=True)
                    starts.append(start)
        finally:
            browser.close()
    print_table(starts)


if __name__ == "__main__":
    main()
