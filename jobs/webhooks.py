"""The runner's webhook sender: claims due deliveries into free slots of its own thread pool.

A POST can take up to the webhook timeout, so deliveries run in a pool of their own
(`webhook_concurrency` threads), never in the leads' pool and never inside a tick: a slow receiver
holds one slot while the next tick claims more for the others. The lease of each claim outlasts
the longest POST (core.webhooks.delivery), so it needs no renewal; a dead worker's lease expires
and another worker claims the delivery again, with the same webhook-id.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from core.config import Settings
from core.db import Database
from core.logs import get_logger
from core.pipeline.store import is_transient_database_error
from core.webhooks.delivery import Clock, claim_deliveries, deliver_one, delivery_lease_seconds

log = get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookSender:
    """Sends the deliveries one worker claims, `concurrency` at a time."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        worker_id: str,
        concurrency: int | None = None,
        clock: Clock = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db, self.settings, self.worker_id = db, settings, worker_id
        self.concurrency = max(1, concurrency or settings.webhook_concurrency)
        self.clock, self.rng = clock, rng
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def in_flight(self) -> set[int]:
        with self._lock:
            return set(self._in_flight)

    def tick(self) -> list[int]:
        """Claim due deliveries for the free slots and start sending them; returns the ids claimed."""
        if self._stopping.is_set():
            return []
        with self._lock:
            free = self.concurrency - len(self._in_flight)
        claimed = claim_deliveries(
            self.db,
            worker_id=self.worker_id,
            now=self.clock(),
            limit=free,
            lease_seconds=delivery_lease_seconds(self.settings),
        )
        for delivery_id in claimed:
            with self._lock:
                self._in_flight.add(delivery_id)
            try:
                self._pool.submit(self._send, delivery_id)
            except RuntimeError:
                # Shutting down: the lease expires and a worker claims the delivery again.
                with self._lock:
                    self._in_flight.discard(delivery_id)
        return claimed

    def _send(self, delivery_id: int) -> None:
        try:
            deliver_one(
                self.db, self.settings, delivery_id, worker_id=self.worker_id, clock=self.clock, rng=self.rng
            )
        except Exception as exc:
            # Like a crash of this one delivery: its lease expires and it is tried again.
            if is_transient_database_error(exc):
                log.warning("webhook_interrupted_by_database", delivery_id=delivery_id, error=str(exc))
            else:
                log.exception("webhook_delivery_failed", delivery_id=delivery_id)
        finally:
            with self._lock:
                self._in_flight.discard(delivery_id)

    def stop(self, *, wait: bool = True) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
