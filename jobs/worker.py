"""The standalone worker: `python -m jobs.worker [--concurrency N] [--until-idle]`.

Any number may run at once against one PostgreSQL database (or one SQLite file on one machine).
SIGTERM or Ctrl-C stops claiming and lets the leads in flight finish; `--until-idle` exits 0 once
no lead of a running campaign is left to act on now (after waiting out the leases of dead
workers), which suits cron jobs and tests. With LEADFLOW_METRICS_PORT set, the worker serves its
Prometheus metrics there (`/metrics`); with LEADFLOW_OTLP_ENDPOINT, it exports its traces.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from pydantic import ValidationError as PydanticValidationError

from core import tracing
from core.config import ConfigError, Settings
from core.db import Database, open_database
from core.errors import LeadflowError
from core.logs import configure_logging, get_logger
from core.metrics import serve_worker_metrics
from core.pipeline.service import PipelineRuntime
from core.tracing import setup_tracing
from jobs.runner import Runner, new_worker_id

log = get_logger(__name__)

# (database, settings, worker id) -> the pipeline's runtime; tests swap the send provider here.
RuntimeFactory = Callable[[Database, Settings, str], PipelineRuntime]
# The interpreter hands the GIL over every 5 ms by default; a thread waking for its rate-limit
# slot then waits behind the pipeline's CPU work of other leads and reaches the provider late,
# bunching requests. A worker is all waiting threads: a 1 ms hand-over keeps the pacing tight.
WORKER_SWITCH_INTERVAL = 0.001


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.worker",
                                     description="Run the Leadflow job runner in this process.")
    parser.add_argument("--concurrency", type=int, default=None, metavar="N",
                        help="leads in flight at once (default: LEADFLOW_WORKER_CONCURRENCY)")
    parser.add_argument("--until-idle", action="store_true",
                        help="exit 0 once no lead of a running campaign is left to act on now")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, runtime_factory: RuntimeFactory | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or idle with --until-idle); returns the exit code."""
    args = parse_args(argv)
    if args.concurrency is not None and args.concurrency < 1:
        print("error: --concurrency must be 1 or more", file=sys.stderr)
        return 2
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)
    try:
        settings = Settings()
        configure_logging(settings)
        db = open_database(settings)
    except (ConfigError, LeadflowError, PydanticValidationError) as exc:
        print(f"error: the worker cannot start: {exc}", file=sys.stderr)
        return 2
    worker_id = new_worker_id()
    try:
        runtime = runtime_factory(db, settings, worker_id) if runtime_factory else None
        runner = Runner(db, settings, mode="standalone", concurrency=args.concurrency,
                        runtime=runtime, worker_id=worker_id)
        if settings.metrics_port is not None:
            serve_worker_metrics(db, settings.metrics_port)
    except (ConfigError, LeadflowError, OSError) as exc:
        db.dispose()
        print(f"error: the worker cannot start: {exc}", file=sys.stderr)
        return 2
    setup_tracing(settings, process="worker")
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    runner.start()
    try:
        if args.until_idle:
            runner.wait_until_idle(stop)
        else:
            while not stop.wait(1.0):
                pass
    finally:
        runner.stop(wait=True)
        db.dispose()
        tracing.shutdown()  # the spans still batched are exported before the process ends
    return 0


if __name__ == "__main__":
    sys.exit(main())
