"""`python -m tests.jobs.slow_worker [worker options]`: the standalone worker with the slow sender.

The SIGKILL and multi-worker tests start this instead of `python -m jobs.worker`, so the
production worker needs no test hook: the sender is swapped through the worker's runtime factory.
SLOW_SEND_SECONDS and SLOW_SEND_DELIVERIES (test-only variables) configure it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.config import Settings
from core.db import Database
from core.pipeline.service import PipelineRuntime
from jobs.runner import runner_runtime
from jobs.worker import main
from tests.jobs.slow_sender import SlowSender


def slow_runtime(db: Database, settings: Settings, worker_id: str) -> PipelineRuntime:
    runtime = runner_runtime(db, settings, worker_id)
    deliveries = os.environ.get("SLOW_SEND_DELIVERIES")
    sender = SlowSender(float(os.environ.get("SLOW_SEND_SECONDS", "0.01")),
                        Path(deliveries) if deliveries else None)
    runtime.senders = {"sms": sender, "email": sender}
    return runtime


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], runtime_factory=slow_runtime))
