"""Deliveries: signed as Standard Webhooks says, retried on schedule, failed after 24 hours, sent
once after a worker dies, never held up by a slow receiver, and refused on private addresses in
production mode."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from core.db import Database
from core.models import DeliveryStatus, WebhookDelivery
from core.permissions import Actor
from core.webhooks.delivery import (
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    claim_deliveries,
    deliver_due,
    load_attempt,
    post_attempt,
    record_result,
    retry_delay,
)
from core.webhooks.endpoints import (
    WebhookInputError,
    create_endpoint,
    rotate_secret,
    send_test_event,
    update_endpoint,
)
from jobs.webhooks import WebhookSender
from tests.support.webhook_receiver import Receiver

EVENTS = ["message.sent", "reply.received"]


class Unjittered:
    """A random source whose jitter factor is always 1: the schedule without its noise."""

    def uniform(self, low: float, high: float) -> float:
        return 1.0


class Jitter:
    """A random source giving these factors in turn (as random.uniform would within its range)."""

    def __init__(self, *factors: float) -> None:
        self.factors = list(factors)

    def uniform(self, low: float, high: float) -> float:
        factor = self.factors.pop(0)
        assert low <= factor <= high
        return factor


def _delivery(db: Database, delivery_id: int) -> WebhookDelivery:
    with db.session(system=True, read_only=True) as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def _endpoint(db: Database, admin: Actor, url: str) -> tuple[int, str]:
    created = create_endpoint(db, admin, url=url, event_types=EVENTS)
    return created.endpoint.id, created.secret


def test_a_delivery_is_signed_and_verifies_with_standardwebhooks(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(db, admin, receiver.url + "/ok")
    receiver.secrets = [secret]
    queued = send_test_event(db, admin, endpoint_id)

    assert deliver_due(db, db.settings, worker_id="w1") == {queued.id: "delivered"}

    [request] = receiver.received()
    assert request.verified
    assert request.headers["webhook-id"] == queued.event_id
    assert request.headers["content-type"] == "application/json"
    assert request.payload["type"] == "webhook.test"
    assert request.payload["data"]["endpoint_id"] == endpoint_id
    assert request.payload["timestamp"].endswith("Z")
    row = _delivery(db, queued.id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 204)
    assert row.last_response_ms is not None and row.delivered_at is not None
    assert row.lease_owner is None


def test_a_wrong_secret_does_not_verify(db: Database, admin: Actor, receiver: Receiver) -> None:
    endpoint_id, _ = _endpoint(db, admin, receiver.url + "/ok")
    receiver.secrets = ["whsec_" + "A" * 32]
    send_test_event(db, admin, endpoint_id)
    deliver_due(db, db.settings, worker_id="w1")
    assert [r.verified for r in receiver.received()] == [False]


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, old = _endpoint(db, admin, receiver.url + "/ok")
    new = rotate_secret(db, admin, endpoint_id, overlap_hours=24).secret
    assert new != old and new.startswith("whsec_")
    send_test_event(db, admin, endpoint_id)
    for secrets in ([old], [new]):
        receiver.secrets = secrets
        deliver_due(db, db.settings, worker_id="w1")
        send_test_event(db, admin, endpoint_id)
    [with_old, with_new] = receiver.received()
    assert with_old.verified and with_new.verified
    assert len(with_new.headers["webhook-signature"].split(" ")) == 2

    # A rotation whose overlap is over: only the newest secret signs.
    newest = rotate_secret(
        db, admin, endpoint_id, overlap_hours=1, now=datetime.now(UTC) - timedelta(hours=2)
    ).secret
    receiver.secrets = [new]
    deliver_due(db, db.settings, worker_id="w1")
    last = receiver.received()[-1]
    assert not last.verified
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    receiver.secrets = [newest]
    assert receiver.verifies(last.body, last.headers)


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (9, 7680), (10, RETRY_MAX_SECONDS), (30, RETRY_MAX_SECONDS)],
)
def test_the_backoff_doubles_from_30_seconds_up_to_4_hours(attempts: int, seconds: float) -> None:
    assert retry_delay(attempts, rng=Unjittered()) == timedelta(seconds=seconds)  # type: ignore[arg-type]


def test_the_jitter_spreads_each_wait_by_a_quarter_either_way() -> None:
    assert retry_delay(2, rng=Jitter(0.75)) == timedelta(seconds=45)  # type: ignore[arg-type]
    assert retry_delay(2, rng=Jitter(1.25)) == timedelta(seconds=75)  # type: ignore[arg-type]
    waits = {retry_delay(3) for _ in range(50)}
    assert len(waits) > 1
    assert all(timedelta(seconds=90) <= w <= timedelta(seconds=150) for w in waits)


def test_a_failing_receiver_is_retried_on_schedule_with_the_same_id(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(db, admin, receiver.url + "/fail")
    receiver.secrets = [secret]
    queued = send_test_event(db, admin, endpoint_id)
    t0 = queued.created_at
    rng = Jitter(1.2, 0.8)

    assert deliver_due(db, db.settings, worker_id="w1", clock=lambda: t0, rng=rng) == {queued.id: "pending"}  # type: ignore[arg-type]
    first = _delivery(db, queued.id)
    assert (first.attempts, first.last_status_code, first.last_error) == (1, 503, "answered 503")
    assert first.next_attempt_at == t0 + timedelta(seconds=RETRY_BASE_SECONDS * 1.2)

    # Not due yet: nothing is sent.
    early = t0 + timedelta(seconds=30)
    assert deliver_due(db, db.settings, worker_id="w1", clock=lambda: early, rng=rng) == {}  # type: ignore[arg-type]
    assert len(receiver.received()) == 1

    second_at = first.next_attempt_at
    assert second_at is not None
    deliver_due(db, db.settings, worker_id="w1", clock=lambda: second_at, rng=rng)  # type: ignore[arg-type]
    second = _delivery(db, queued.id)
    assert second.attempts == 2
    assert second.next_attempt_at == second_at + timedelta(seconds=2 * RETRY_BASE_SECONDS * 0.8)

    # The receiver is fixed: the next attempt delivers, under the same webhook-id.
    update_endpoint(db, admin, endpoint_id, url=receiver.url + "/ok")
    third_at = second.next_attempt_at
    assert third_at is not None
    assert deliver_due(db, db.settings, worker_id="w1", clock=lambda: third_at) == {queued.id: "delivered"}
    assert [r.headers["webhook-id"] for r in receiver.received()] == [queued.event_id] * 3
    assert all(r.verified for r in receiver.received())
    assert _delivery(db, queued.id).attempts == 3


def test_the_last_retry_falls_at_24_hours_and_then_the_delivery_fails(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, _ = _endpoint(db, admin, receiver.url + "/fail")
    queued = send_test_event(db, admin, endpoint_id)
    give_up_at = queued.created_at + timedelta(hours=24)
    nearly = give_up_at - timedelta(minutes=1)
    with db.session(system=True) as session, session.begin():
        session.execute(update(WebhookDelivery).values(next_attempt_at=nearly, attempts=12))

    deliver_due(db, db.settings, worker_id="w1", clock=lambda: nearly)
    row = _delivery(db, queued.id)
    assert (row.status, row.next_attempt_at) == ("pending", give_up_at)  # 4 h would be past the period

    assert deliver_due(db, db.settings, worker_id="w1", clock=lambda: give_up_at) == {queued.id: "failed"}
    row = _delivery(db, queued.id)
    assert (row.status, row.attempts, row.next_attempt_at, row.last_status_code) == ("failed", 14, None, 503)
    later = give_up_at + timedelta(days=1)
    assert deliver_due(db, db.settings, worker_id="w1", clock=lambda: later) == {}
    assert len(receiver.received()) == 2


def test_a_dead_workers_delivery_is_sent_once_after_its_lease_expires_with_the_same_id(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(db, admin, receiver.url + "/ok")
    receiver.secrets = [secret]
    queued = send_test_event(db, admin, endpoint_id)
    now = datetime.now(UTC)
    # A worker claimed it and was killed before sending: its lease runs on.
    assert claim_deliveries(db, worker_id="dead", now=now, limit=10, lease_seconds=60) == [queued.id]
    assert (
        claim_deliveries(db, worker_id="other", now=now + timedelta(seconds=59), limit=10, lease_seconds=60)
        == []
    )

    # Once the lease has expired another worker sends it, once.
    later = now + timedelta(seconds=61)
    assert deliver_due(db, db.settings, worker_id="alive", clock=lambda: later) == {queued.id: "delivered"}
    assert [(r.headers["webhook-id"], r.verified) for r in receiver.received()] == [(queued.event_id, True)]
    assert deliver_due(db, db.settings, worker_id="alive", clock=lambda: later + timedelta(hours=1)) == {}
    assert len(receiver.received()) == 1
    row = _delivery(db, queued.id)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_a_worker_that_lost_its_lease_cannot_record_over_the_one_that_took_over(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, _ = _endpoint(db, admin, receiver.url + "/fail")
    queued = send_test_event(db, admin, endpoint_id)
    now = datetime.now(UTC)
    claim_deliveries(db, worker_id="slow", now=now, limit=1, lease_seconds=60)
    stale = load_attempt(db, queued.id, worker_id="slow", now=now)
    assert stale is not None
    later = now + timedelta(seconds=61)
    assert claim_deliveries(db, worker_id="fast", now=later, limit=1, lease_seconds=60) == [queued.id]
    result = post_attempt(stale, db.settings, later)
    assert (
        record_result(db, stale, result, worker_id="slow", now=later, retry_period=timedelta(hours=24))
        is None
    )
    row = _delivery(db, queued.id)
    assert (row.status, row.lease_owner, row.last_status_code) == ("sending", "fast", None)


def test_a_slow_receiver_does_not_hold_the_other_deliveries(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    slow_id, _ = _endpoint(db, admin, receiver.url + "/slow")
    fast_id, _ = _endpoint(db, admin, receiver.url + "/ok")
    slow = send_test_event(db, admin, slow_id)
    fast = send_test_event(db, admin, fast_id)
    sender = WebhookSender(db, db.settings, worker_id="w1", concurrency=2)
    try:
        assert sender.tick() == [slow.id, fast.id]
        assert receiver.slow_arrived.wait(30)
        # The fast one is delivered while the slow receiver still holds its request open.
        assert _eventually_delivered(db, fast.id)
        assert _delivery(db, slow.id).status == "sending"
        # Its slot is free once its thread has finished (just after the row was written).
        assert _eventually(lambda: sender.in_flight() == {slow.id})
        # A third delivery is claimed into the freed slot, and delivered, while the slow one is out.
        third = send_test_event(db, admin, fast_id)
        assert sender.tick() == [third.id]
        assert _eventually_delivered(db, third.id)
        assert _delivery(db, slow.id).status == "sending"
        receiver.release_slow.set()
        assert _eventually_delivered(db, slow.id)
    finally:
        receiver.release_slow.set()
        sender.stop(wait=True)
    assert sorted(r.path for r in receiver.received()) == ["/ok", "/ok", "/slow"]


def _eventually(condition: Callable[[], bool]) -> bool:
    """Polls an outcome (never a duration): True once it holds, False if it never does in 30 s."""
    for _ in range(600):
        if condition():
            return True
        threading.Event().wait(0.05)
    return False


def _eventually_delivered(db: Database, delivery_id: int) -> bool:
    return _eventually(lambda: _delivery(db, delivery_id).status == "delivered")


def test_private_addresses_are_refused_in_production_mode(
    db: Database, admin: Actor, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registered while private addresses were allowed (development), then the installation
    # runs in production mode.
    endpoint_id, _ = _endpoint(db, admin, receiver.url + "/ok")
    queued = send_test_event(db, admin, endpoint_id)
    production = db.settings.model_copy(update={"dev_mode": False, "webhooks_allow_private": False})
    monkeypatch.setattr(db, "settings", production)

    with pytest.raises(WebhookInputError, match="private address") as refused:
        create_endpoint(db, admin, url=receiver.url + "/ok", event_types=EVENTS)
    assert refused.value.field == "url"
    for url in (
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
    ):
        with pytest.raises(WebhookInputError, match="private address"):
            update_endpoint(db, admin, endpoint_id, url=url)

    # The queued delivery is refused at connect time too: nothing reaches the receiver.
    assert deliver_due(db, production, worker_id="w1") == {queued.id: "pending"}
    row = _delivery(db, queued.id)
    assert "private address" in (row.last_error or "") and row.last_status_code is None
    assert receiver.received() == []

    allowed = production.model_copy(update={"webhooks_allow_private": True})
    monkeypatch.setattr(db, "settings", allowed)
    assert create_endpoint(db, admin, url=receiver.url + "/ok", event_types=EVENTS).endpoint.id


def test_a_disabled_endpoint_gets_no_more_events_but_a_test_still_goes(
    db: Database, admin: Actor, receiver: Receiver
) -> None:
    endpoint_id, _ = _endpoint(db, admin, receiver.url + "/ok")
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        from core.webhooks.events import emit

        assert emit(session, admin.tenant_id, "message.sent", {"message_id": 1}) == 1
    update_endpoint(db, admin, endpoint_id, enabled=False)
    test = send_test_event(db, admin, endpoint_id)
    outcomes = deliver_due(db, db.settings, worker_id="w1")
    assert outcomes[test.id] == "delivered"
    with db.session(system=True, read_only=True) as session:
        event_row = session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "message.sent")
        )
    assert event_row is not None and event_row.status == DeliveryStatus.failed.value
    assert "disabled" in (event_row.last_error or "")
    assert [r.payload["type"] for r in receiver.received()] == ["webhook.test"]


def test_each_attempt_is_counted_by_its_outcome(db: Database, admin: Actor, receiver: Receiver) -> None:
    def counted(outcome: str) -> float:
        return REGISTRY.get_sample_value("leadflow_webhook_deliveries_total", {"outcome": outcome}) or 0.0

    before = {outcome: counted(outcome) for outcome in ("retry", "delivered")}
    endpoint_id, secret = _endpoint(db, admin, receiver.url + "/fail")
    receiver.secrets = [secret]
    queued = send_test_event(db, admin, endpoint_id)
    t0 = queued.created_at
    deliver_due(db, db.settings, worker_id="w1", clock=lambda: t0, rng=Unjittered())  # type: ignore[arg-type]
    assert counted("retry") == before["retry"] + 1
    update_endpoint(db, admin, endpoint_id, url=receiver.url + "/ok")
    retry_at = _delivery(db, queued.id).next_attempt_at
    assert retry_at is not None
    deliver_due(db, db.settings, worker_id="w1", clock=lambda: retry_at)  # type: ignore[arg-type]
    assert counted("delivered") == before["delivered"] + 1
    assert counted("retry") == before["retry"] + 1
