"""The runner embedded in the Streamlit server: one per process, however many sessions ask for it.

Streamlit runs app.py once per browser session and on every rerun, each in its own thread, so
the runner is a process-wide singleton behind a lock, started on the first call and stopped at
interpreter exit.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

from core.config import Settings
from core.db import open_database

if TYPE_CHECKING:
    from jobs.runner import Runner

_lock = threading.Lock()
_runner: Runner | None = None


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
