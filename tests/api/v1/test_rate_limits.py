"""Rate limits per credential: 429 with Retry-After and the RateLimit headers, counted in the
database so that every replica shares them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.api_conventions import count_request
from core.models import Role
from core.permissions import Actor
from tests.api.v1.conftest import V1Api
from tests.factories import make_actor, make_tenant


@pytest.fixture
def admin(v1: V1Api) -> Actor:
    return make_actor(v1.db, make_tenant(v1.db, "Acme"), Role.admin, "ada")


def _use_up(v1: V1Api, credential: str, limit: int) -> None:
    """Spend the credential's whole limit in this minute and the next one, as other replicas
    would: the request that follows is over the limit whichever minute it lands in."""
    now = datetime.now(UTC)
    for minute in (now, now + timedelta(seconds=60)):
        for _ in range(limit):
            count_request(v1.db, credential, limit, now=minute)


def test_over_the_limit_is_a_429_with_retry_after(v1: V1Api, admin: Actor) -> None:
    v1.settings.api_rate_limit = 5
    _use_up(v1, f"user:{admin.user_id}", 5)
    refused = v1.client(admin).get("/api-keys")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "5"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-reset"] == refused.headers["retry-after"]
    assert "5 requests a minute" in refused.json()["detail"]


def test_the_limit_is_per_credential(v1: V1Api, admin: Actor) -> None:
    v1.settings.api_rate_limit = 5
    _use_up(v1, f"user:{admin.user_id}", 5)
    colleague = make_actor(v1.db, admin.tenant_id, Role.admin, "bea")
    allowed = v1.client(colleague).get("/api-keys")
    assert allowed.status_code == 200
    assert allowed.headers["ratelimit-limit"] == "5"
    assert allowed.headers["ratelimit-remaining"] == "4"


def test_an_api_key_counts_under_its_own_name(v1: V1Api, admin: Actor) -> None:
    v1.settings.api_rate_limit = 5
    created = v1.client(admin).post("/api-keys", json={"name": "Sync", "role": "admin"}).json()
    _use_up(v1, f"key:{created['id']}", 5)
    headers = {"X-API-Key": created["key"]}
    assert v1.client().get("/api-keys", headers=headers).status_code == 429
    assert v1.client(admin).get("/api-keys").status_code == 200


def test_a_refused_request_does_nothing(v1: V1Api, admin: Actor) -> None:
    v1.settings.api_rate_limit = 5
    _use_up(v1, f"user:{admin.user_id}", 5)
    client = v1.client(admin)
    assert client.post("/api-keys", json={"name": "Sync", "role": "manager"}).status_code == 429
    v1.settings.api_rate_limit = 0  # no limit
    assert client.get("/api-keys").json()["items"] == []


def test_unauthenticated_requests_are_answered_by_the_route(v1: V1Api, admin: Actor) -> None:
    v1.settings.api_rate_limit = 1
    client = v1.client()
    for _ in range(3):
        assert client.get("/api-keys").status_code == 401
