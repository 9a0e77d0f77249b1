"""A test-only send provider that takes its time and writes down every message it accepts.

It stands for a real provider that cannot be asked afterwards whether a message arrived
(`was_sent` answers None), so a worker killed mid-send leaves a row that must become `unknown`.
Each accepted message is appended to a deliveries file, which survives a SIGKILL of the worker:
the test reads it to prove no message reached the "provider" twice.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from core.channels.base import OutgoingMessage, SendReceipt

PROVIDER_NAME = "slowbox"


class SlowSender:
    name = PROVIDER_NAME

    def __init__(self, delay_seconds: float, deliveries: Path | None = None) -> None:
        self.delay_seconds = delay_seconds
        self.deliveries = deliveries
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> SendReceipt:
        time.sleep(self.delay_seconds)
        with self._lock:
            self.sent.append(message.idempotency_key)
            if self.deliveries is not None:
                # One write(2) per line with O_APPEND: whole lines, even from several processes.
                fd = os.open(self.deliveries, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, f"{message.idempotency_key} {os.getpid()}\n".encode())
                finally:
                    os.close(fd)
        return SendReceipt(f"{PROVIDER_NAME}-{message.idempotency_key}")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


def read_deliveries(path: Path) -> list[tuple[str, int]]:
    """(idempotency key, pid of the worker that sent it) for every message accepted."""
    if not path.exists():
        return []
    return [(key, int(pid)) for key, pid in (line.split() for line in path.read_text().splitlines())]
