"""Delivering webhooks: claim due deliveries with a lease, sign them, POST them, record what happened.

A claim is one UPDATE ... RETURNING whose inner SELECT takes `FOR UPDATE SKIP LOCKED` on
PostgreSQL (SQLite has one writer), so workers never claim the same delivery; its lease outlasts
the longest POST the settings allow, so two workers never send one delivery at once. A worker that
dies leaves its lease to expire, and the delivery is claimed again with the same `webhook-id`.

The POST runs outside any database transaction, through the same vetted network as the research
fetch (core.net_guard: no private address in production mode, a deadline on the whole request).
Signatures follow Standard Webhooks (the `standardwebhooks` package): the current secret signs,
and during a rotation's overlap the previous one signs too, each signature listed in the header.
A 2xx answer delivers; anything else is retried with exponential backoff and jitter until the
retry period (24 h by default) has passed since the event, then the delivery is failed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import and_, or_, select, update
from standardwebhooks import Webhook

from core.config import Settings
from core.db import Database
from core.logs import get_logger
from core.metrics import WEBHOOK_DELIVERIES
from core.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from core.net_guard import Deadline, UnsafeAddress, VettedTransport
from core.webhooks.events import EventType

log = get_logger(__name__)
Clock = Callable[[], datetime]

# The first retry waits about this long; each later one twice as long, up to RETRY_MAX_SECONDS.
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 4 * 3600.0
# Each wait is the computed one times a random factor in this range, so that the deliveries of
# a receiver that was down do not all come back at the same second.
RETRY_JITTER = (0.75, 1.25)
LEASE_MARGIN_SECONDS = 30.0
USER_AGENT = "Leadflow-Webhooks/1"
MAX_ERROR_CHARS = 500


def allow_private_addresses(settings: Settings) -> bool:
    """Endpoints on private or loopback addresses: allowed in development mode or when set (tests)."""
    return settings.webhooks_allow_private or settings.dev_mode


def delivery_lease_seconds(settings: Settings) -> float:
    """Longer than one POST can take (its deadline is the timeout), so a live worker's lease never lapses."""
    return max(float(settings.lease_seconds), settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s, 1 min, 2 min, ... up to 4 h, jittered."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * (rng or random).uniform(*RETRY_JITTER))


def next_attempt_at(
    *,
    created_at: datetime,
    attempts: int,
    now: datetime,
    retry_period: timedelta,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after a failed attempt, or None when the retry period is over.

    The last retry falls at the end of the period itself: a receiver back in time still gets it.
    """
    give_up_at = created_at + retry_period
    if now >= give_up_at:
        return None
    return min(now + retry_delay(attempts, rng=rng), give_up_at)


def due_condition(now: datetime) -> Any:
    """Waiting for its attempt, or claimed by a worker whose lease has expired (it died)."""
    return or_(
        and_(WebhookDelivery.status == DeliveryStatus.pending.value, WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.status == DeliveryStatus.sending.value, WebhookDelivery.lease_expires_at <= now),
    )


def claim_deliveries(
    db: Database, *, worker_id: str, now: datetime, limit: int, lease_seconds: float
) -> list[int]:
    """Claim up to `limit` due deliveries, oldest due first; returns their ids."""
    if limit <= 0:
        return []
    candidates = (
        select(WebhookDelivery.id)
        .where(due_condition(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if not db.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    with db.session(system=True) as session, session.begin():
        return list(
            session.scalars(
                update(WebhookDelivery)
                # The due condition again: a row another worker claimed meanwhile is not taken twice.
                .where(WebhookDelivery.id.in_(candidates.scalar_subquery()), due_condition(now))
                .values(
                    status=DeliveryStatus.sending.value,
                    lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=WebhookDelivery.attempts + 1,
                )
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
        )


@dataclass(frozen=True)
class Attempt:
    """What one attempt needs, read before the POST so that no transaction stays open during it."""

    delivery_id: int
    tenant_id: int
    event_id: str
    event_type: str
    url: str
    body: str
    secrets: tuple[str, ...]
    endpoint_enabled: bool
    attempts: int
    created_at: datetime


def load_attempt(db: Database, delivery_id: int, *, worker_id: str, now: datetime) -> Attempt | None:
    """The claimed delivery with its endpoint; None when it is gone or no longer this worker's."""
    with db.session(system=True, read_only=True) as session:
        row = session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.lease_owner == worker_id,
                WebhookDelivery.status == DeliveryStatus.sending.value,
            )
        ).one_or_none()
        if row is None:
            return None
        delivery, endpoint = row
        return Attempt(
            delivery_id=delivery.id,
            tenant_id=delivery.tenant_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            url=endpoint.url,
            body=json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False),
            secrets=signing_secrets(endpoint, now),
            endpoint_enabled=endpoint.enabled,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
        )


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """The current secret, and the previous one while its overlap lasts."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def signed_headers(attempt: Attempt, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1,` signature per secret, separated by spaces."""
    signatures = " ".join(
        Webhook(secret).sign(attempt.event_id, now, attempt.body) for secret in attempt.secrets
    )
    return {
        "webhook-id": attempt.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None: no answer (refused, timed out, unreachable)
    response_ms: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_attempt(attempt: Attempt, settings: Settings, now: datetime) -> AttemptResult:
    """POST the signed body; the answer's status (its body is not read), or why there was none."""
    parts = urlsplit(attempt.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return AttemptResult(None, None, f"'{attempt.url}' is not an http or https URL")
    deadline = Deadline(settings.webhook_timeout_seconds)
    started = time.monotonic()
    try:
        with (
            httpx.Client(
                timeout=settings.webhook_timeout_seconds,
                follow_redirects=False,
                transport=VettedTransport(allow_private_addresses(settings), deadline),
            ) as client,
            client.stream(
                "POST", attempt.url, content=attempt.body.encode(), headers=signed_headers(attempt, now)
            ) as response,
        ):
            code = response.status_code
    except UnsafeAddress as exc:
        return AttemptResult(None, None, str(exc))
    except httpx.HTTPError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        reason = (
            f"no answer within {settings.webhook_timeout_seconds:g} s"
            if deadline.passed
            else (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        )
        return AttemptResult(None, elapsed, reason[:MAX_ERROR_CHARS])
    elapsed = int((time.monotonic() - started) * 1000)
    return AttemptResult(code, elapsed, None if 200 <= code < 300 else f"answered {code}")


def record_result(
    db: Database,
    attempt: Attempt,
    result: AttemptResult,
    *,
    worker_id: str,
    now: datetime,
    retry_period: timedelta,
    rng: random.Random | None = None,
    retry: bool = True,
) -> str | None:
    """Write the attempt's outcome while the lease is still this worker's; the new status, or None
    when the lease was lost (another worker has the delivery now)."""
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": result.status_code,
        "last_response_ms": result.response_ms,
        "last_error": result.error,
    }
    if result.delivered:
        values.update(status=DeliveryStatus.delivered.value, delivered_at=now, next_attempt_at=None)
    else:
        retry_at = (
            next_attempt_at(
                created_at=attempt.created_at,
                attempts=attempt.attempts,
                now=now,
                retry_period=retry_period,
                rng=rng,
            )
            if retry
            else None
        )
        if retry_at is None:
            values.update(status=DeliveryStatus.failed.value, next_attempt_at=None)
        else:
            values.update(status=DeliveryStatus.pending.value, next_attempt_at=retry_at)
    with db.session(tenant_id=attempt.tenant_id) as session, session.begin():
        changed = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == attempt.delivery_id,
                WebhookDelivery.lease_owner == worker_id,
                WebhookDelivery.status == DeliveryStatus.sending.value,
            )
            .values(values)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        ).first()
    status = values["status"] if changed is not None else None
    _record_attempt(attempt, result, status)
    return status


# An attempt's outcome as the metric counts it: delivered, to be retried, given up, or its result
# not recorded because the worker's lease was lost (another worker owns the delivery now).
ATTEMPT_OUTCOMES = {
    DeliveryStatus.delivered.value: "delivered",
    DeliveryStatus.pending.value: "retry",
    DeliveryStatus.failed.value: "failed",
}


def _record_attempt(attempt: Attempt, result: AttemptResult, status: str | None) -> None:
    """The one place each attempt is counted: the log line and the webhook deliveries metric."""
    outcome = ATTEMPT_OUTCOMES.get(status or "", "lease_lost")
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    log.info(
        "webhook_attempt",
        delivery_id=attempt.delivery_id,
        event_type=attempt.event_type,
        attempt=attempt.attempts,
        status_code=result.status_code,
        response_ms=result.response_ms,
        outcome=status or "lease_lost",
    )


def deliver_one(
    db: Database,
    settings: Settings,
    delivery_id: int,
    *,
    worker_id: str,
    clock: Clock,
    rng: random.Random | None = None,
) -> str | None:
    """One attempt of a delivery this worker claimed; returns its new status (None: not ours)."""
    attempt = load_attempt(db, delivery_id, worker_id=worker_id, now=clock())
    if attempt is None:
        return None
    retry_period = timedelta(hours=settings.webhook_retry_hours)
    if not attempt.endpoint_enabled and attempt.event_type != EventType.webhook_test.value:
        result = AttemptResult(None, None, "the endpoint was disabled before this event was sent")
        return record_result(
            db, attempt, result, worker_id=worker_id, now=clock(), retry_period=retry_period, retry=False
        )
    result = post_attempt(attempt, settings, clock())
    return record_result(
        db, attempt, result, worker_id=worker_id, now=clock(), retry_period=retry_period, rng=rng
    )


def deliver_due(
    db: Database,
    settings: Settings,
    *,
    worker_id: str,
    clock: Clock | None = None,
    limit: int = 100,
    rng: random.Random | None = None,
) -> dict[int, str | None]:
    """Claim the due deliveries and send them, `webhook_concurrency` at a time; waits for all.

    The job runner sends as a pool that claims while it sends (jobs.webhooks); this is the same
    work in one call, for the command line and tests.
    """
    clock = clock or (lambda: datetime.now(UTC))
    claimed = claim_deliveries(
        db, worker_id=worker_id, now=clock(), limit=limit, lease_seconds=delivery_lease_seconds(settings)
    )
    if not claimed:
        return {}
    with ThreadPoolExecutor(
        min(len(claimed), settings.webhook_concurrency), thread_name_prefix="webhook"
    ) as pool:
        futures = {
            delivery_id: pool.submit(
                deliver_one, db, settings, delivery_id, worker_id=worker_id, clock=clock, rng=rng
            )
            for delivery_id in claimed
        }
        return {delivery_id: future.result() for delivery_id, future in futures.items()}
