"""The runner embedded in the Streamlit server: one per process, however many sessions ask for it.

Streamlit runs app.py once per browser session and on every rerun, each in its own thread, so
the runner is a process-wide singleton behind a lock, started on the first call and stopped at
interpreter exit. The dashboard starts it in the background (`start_embedded_runner`): the
runner imports the model stack, which takes longer than the sign-in page takes to draw.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

from core.background import wait_for_screen
from core.config import Settings
from core.db import open_database
from core.logs import get_logger

if TYPE_CHECKING:
    from jobs.runner import Runner

log = get_logger(__name__)

_lock = threading.Lock()
_runner: Runner | None = None
# The background start in progress, and why the last one failed.
_starting: threading.Thread | None = None
_failure: Exception | None = None


def ensure_embedded_runner(settings: Settings) -> Runner | None:
    """The process's runner, started on first call; None when `embedded_runner` is off."""
    global _runner
    if not settings.embedded_runner:
        return None
    with _lock:
        if _runner is None:
            # Imported here: a dashboard whose work is done by workers never loads the model stack.
            from jobs.runner import Runner

            runner = Runner(open_database(settings), settings, mode="embedded")
            runner.start()
            atexit.register(_stop_at_exit, runner)
            _runner = runner
        return _runner


def start_embedded_runner(
    settings: Settings, *, after: threading.Thread | None = None
) -> threading.Thread | None:
    """Start the process's runner in a background thread, once; the caller does not wait.

    `after`: a thread to let finish first (core.background.wait_for_screen): the dashboard passes the script
    run that draws the first screen, which would otherwise share the interpreter with the
    runner's imports. Returns the thread starting it, or None when there is nothing to start
    (off, started, or already starting). Why a start failed is kept for `embedded_runner_failure`.
    """
    global _starting
    if not settings.embedded_runner:
        return None
    with _lock:
        if _runner is not None or _starting is not None:
            return None
        _starting = threading.Thread(
            target=_start_in_background, args=(settings, after), name="embedded-runner-start", daemon=True
        )
        _starting.start()
        return _starting


def _start_in_background(settings: Settings, after: threading.Thread | None = None) -> None:
    global _starting, _failure
    try:
        wait_for_screen(after)
        ensure_embedded_runner(settings)
        failure = None
    except Exception as exc:  # kept and shown by the dashboard, not lost with the thread
        log.exception("embedded_runner_start_failed")
        failure = exc
    with _lock:
        _starting, _failure = None, failure


def embedded_runner_failure() -> Exception | None:
    """Why the last background start of the runner failed, or None."""
    return _failure


def _stop_at_exit(runner: Runner) -> None:
    runner.stop(wait=True)
    runner.db.dispose()


def stop_embedded_runner() -> None:
    """Stop the process's runner now (tests, and a server shutting down on purpose)."""
    global _runner
    with _lock:
        runner, _runner = _runner, None
    if runner is not None:
        atexit.unregister(_stop_at_exit)
        _stop_at_exit(runner)
