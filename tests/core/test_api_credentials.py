"""The API's credentials and conventions in core: what the HTTP tests cannot reach without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.api_conventions import (
    IN_FLIGHT_TIMEOUT,
    IdempotentRequest,
    StoredAnswer,
    api_housekeeping,
    begin_idempotent,
    count_request,
    finish_idempotent,
)
from core.api_keys import api_key_caller, create_api_key, list_api_keys, revoke_api_key
from core.api_tokens import (
    CredentialRefused,
    access_token_caller,
    refresh_api_tokens,
    start_api_sign_in,
)
from core.config import Settings
from core.db import Database
from core.errors import Conflict, NotFound
from core.models import ApiIdempotencyKey, ApiRateCounter, ApiRefreshToken, Role
from core.permissions import Actor
from core.sign_in import session_id_from_token, session_token
from tests.factories import make_actor, make_tenant

T0 = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db, "Acme"), Role.admin, "ada")


def _last_used(db: Database, actor: Actor) -> datetime | None:
    return list_api_keys(db, actor)[0].last_used_at


def test_last_used_is_written_at_most_once_a_minute(db: Database, admin: Actor) -> None:
    created = create_api_key(db, admin, name="Sync", role=Role.manager, now=T0)
    caller = api_key_caller(db, created.secret, now=T0 + timedelta(seconds=5))
    assert caller.actor.user_id is None and caller.actor.username == "api-key:Sync"
    assert caller.actor.role is Role.manager and caller.actor.tenant_id == admin.tenant_id
    assert _last_used(db, admin) == T0 + timedelta(seconds=5)
    api_key_caller(db, created.secret, now=T0 + timedelta(seconds=50))
    assert _last_used(db, admin) == T0 + timedelta(seconds=5)
    api_key_caller(db, created.secret, now=T0 + timedelta(seconds=66))
    assert _last_used(db, admin) == T0 + timedelta(seconds=66)


def test_a_key_expires_at_its_time_and_is_revoked_by_prefix(db: Database, admin: Actor) -> None:
    created = create_api_key(db, admin, name="Trial", role=Role.analyst, expires_days=1, now=T0)
    api_key_caller(db, created.secret, now=T0 + timedelta(hours=23))
    with pytest.raises(CredentialRefused, match="expired"):
        api_key_caller(db, created.secret, now=T0 + timedelta(days=1))
    revoke_api_key(db, admin, prefix=created.key.prefix)
    with pytest.raises(CredentialRefused, match="revoked"):
        api_key_caller(db, created.secret, now=T0)
    with pytest.raises(NotFound):
        revoke_api_key(db, admin, prefix="000000000000")


def test_another_tenant_cannot_revoke_a_key_by_prefix(db: Database, admin: Actor) -> None:
    created = create_api_key(db, admin, name="Sync", role=Role.manager)
    stranger = make_actor(db, make_tenant(db, "Globex"), Role.owner, "gus")
    with pytest.raises(NotFound):
        revoke_api_key(db, stranger, prefix=created.key.prefix)
    assert api_key_caller(db, created.secret).actor.tenant_id == admin.tenant_id


def test_the_rate_counter_is_shared_by_every_replica(db: Database, settings: Settings) -> None:
    other_replica = Database(settings)
    try:
        decisions = [
            count_request(replica, "key:1", 3, now=T0 + timedelta(seconds=second))
            for second, replica in enumerate([db, other_replica, db, other_replica])
        ]
    finally:
        other_replica.dispose()
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].reset_seconds == 57
    # The next minute is a new window.
    assert count_request(db, "key:1", 3, now=T0 + timedelta(seconds=60)).remaining == 2


def test_refresh_tokens_expire(db: Database, settings: Settings, admin: Actor) -> None:
    pair = start_api_sign_in(db, settings, admin, now=T0)
    later = T0 + timedelta(days=settings.api_refresh_token_days)
    with pytest.raises(CredentialRefused, match="expired"):
        refresh_api_tokens(db, settings, pair.refresh_token, now=later)
    assert refresh_api_tokens(db, settings, pair.refresh_token, now=later - timedelta(seconds=1))


def test_a_sign_in_cookie_is_not_an_access_token(db: Database, settings: Settings, admin: Actor) -> None:
    cookie = session_token(
        "some-session", settings.require_cookie_key(), datetime.now(UTC) + timedelta(hours=1)
    )
    with pytest.raises(CredentialRefused, match="not valid"):
        access_token_caller(db, settings, cookie)
    access = start_api_sign_in(db, settings, admin).access_token
    assert session_id_from_token(access, settings.require_cookie_key()) is None


def _request(actor: Actor, body: bytes = b"{}") -> IdempotentRequest:
    return IdempotentRequest(
        tenant_id=actor.tenant_id,
        credential=f"user:{actor.user_id}",
        key="k-1",
        method="POST",
        path="/api/v1/things?",
        body=body,
    )


def test_an_abandoned_first_request_is_taken_over_after_a_while(
    db: Database, settings: Settings, admin: Actor
) -> None:
    request = _request(admin)
    assert begin_idempotent(db, settings, request, now=T0) is None
    with pytest.raises(Conflict):
        begin_idempotent(db, settings, request, now=T0 + IN_FLIGHT_TIMEOUT - timedelta(seconds=1))
    assert begin_idempotent(db, settings, request, now=T0 + IN_FLIGHT_TIMEOUT) is None


def test_answers_are_kept_a_day_then_forgotten(db: Database, settings: Settings, admin: Actor) -> None:
    request = _request(admin)
    assert begin_idempotent(db, settings, request, now=T0) is None
    answer = StoredAnswer(status=201, body=b'{"id": 7}', headers={"content-type": "application/json"})
    finish_idempotent(db, settings, request, answer)
    assert begin_idempotent(db, settings, request, now=T0 + timedelta(hours=23)) == answer
    # The stored answer cannot be read with another Idempotency-Key's derived key.
    with db.session(system=True, read_only=True) as session:
        sealed = session.scalar(select(ApiIdempotencyKey.response))
    assert sealed is not None and b'"id": 7' not in sealed
    assert begin_idempotent(db, settings, request, now=T0 + timedelta(hours=24)) is None


def test_housekeeping_deletes_only_what_has_served_its_time(
    db: Database, settings: Settings, admin: Actor
) -> None:
    begin_idempotent(db, settings, _request(admin), now=T0 - timedelta(hours=25))
    fresh = IdempotentRequest(admin.tenant_id, f"user:{admin.user_id}", "k-2", "POST", "/x?", b"")
    begin_idempotent(db, settings, fresh, now=T0 - timedelta(hours=1))
    count_request(db, "user:1", 10, now=T0 - timedelta(minutes=5))
    count_request(db, "user:1", 10, now=T0)
    old = start_api_sign_in(db, settings, admin, now=T0 - timedelta(days=settings.api_refresh_token_days + 2))
    start_api_sign_in(db, settings, admin, now=T0)
    removed = api_housekeeping(db, now=T0)
    assert (removed.idempotency_keys, removed.rate_counters, removed.refresh_tokens) == (1, 1, 1)
    with db.session(system=True, read_only=True) as session:
        assert session.scalar(select(func.count(ApiIdempotencyKey.id))) == 1
        assert session.scalar(select(func.count()).select_from(ApiRateCounter)) == 1
        assert session.scalar(select(func.count(ApiRefreshToken.id))) == 1
    with pytest.raises(CredentialRefused):
        refresh_api_tokens(db, settings, old.refresh_token, now=T0)
