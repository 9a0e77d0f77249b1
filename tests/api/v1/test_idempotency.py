"""Idempotency-Key on every POST under /api/v1: a retry gets the first answer and does nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from api.v1.deps import ActorDep
from core.api_conventions import IdempotentRequest, begin_idempotent
from core.models import ApiIdempotencyKey, ApiKey, Role
from core.permissions import Actor
from tests.api.v1.conftest import V1Api
from tests.factories import make_actor, make_tenant

KEY = {"Idempotency-Key": "5f1c4a52-1f0e-4bd3-9d7e-0c1e6b0e7a11"}


@pytest.fixture
def admin(v1: V1Api) -> Actor:
    return make_actor(v1.db, make_tenant(v1.db, "Acme"), Role.admin, "ada")


def _keys(v1: V1Api) -> int:
    with v1.db.session(system=True, read_only=True) as session:
        return session.scalar(select(func.count(ApiKey.id))) or 0


def test_a_retry_returns_the_first_answer_and_creates_one_key(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    body = {"name": "CRM sync", "role": "manager"}
    first = client.post("/api-keys", json=body, headers=KEY)
    retry = client.post("/api-keys", json=body, headers=KEY)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()  # the same key, its secret included
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _keys(v1) == 1
    # Without the header, each POST is its own request.
    assert client.post("/api-keys", json=body).status_code == 201
    assert _keys(v1) == 2


def test_the_stored_answer_does_not_hold_the_secret_in_clear(v1: V1Api, admin: Actor) -> None:
    created = v1.client(admin).post("/api-keys", json={"name": "CRM", "role": "manager"}, headers=KEY)
    secret = created.json()["key"].encode()
    with v1.db.session(system=True, read_only=True) as session:
        row = session.scalars(select(ApiIdempotencyKey)).one()
    assert row.status == 201
    assert row.response is not None and secret not in row.response
    assert KEY["Idempotency-Key"] not in row.key_hash


def test_the_same_key_with_another_body_is_a_422_problem(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    assert client.post("/api-keys", json={"name": "A", "role": "manager"}, headers=KEY).status_code == 201
    other = client.post("/api-keys", json={"name": "B", "role": "manager"}, headers=KEY)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _keys(v1) == 1


def test_a_retry_while_the_first_is_in_flight_is_a_409_problem(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    body = b'{"name":"CRM","role":"manager"}'
    # The first request has started on another replica and not answered yet.
    in_flight = IdempotentRequest(
        tenant_id=admin.tenant_id,
        credential=f"user:{admin.user_id}",
        key=KEY["Idempotency-Key"],
        method="POST",
        path="/api/v1/api-keys?",
        body=body,
    )
    assert begin_idempotent(v1.db, v1.settings, in_flight) is None
    duplicate = client.post("/api-keys", content=body, headers={**KEY, "Content-Type": "application/json"})
    assert duplicate.status_code == 409, duplicate.text
    assert "still being processed" in duplicate.json()["detail"]
    assert _keys(v1) == 0


def test_keys_are_per_caller(v1: V1Api, admin: Actor) -> None:
    other_admin = make_actor(v1.db, admin.tenant_id, Role.owner, "olga")
    body = {"name": "CRM", "role": "manager"}
    first = v1.client(admin).post("/api-keys", json=body, headers=KEY)
    second = v1.client(other_admin).post("/api-keys", json=body, headers=KEY)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_an_error_answer_is_replayed_too(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    body = {"name": "Too strong", "role": "owner"}
    first = client.post("/api-keys", json=body, headers=KEY)
    retry = client.post("/api-keys", json=body, headers=KEY)
    assert first.status_code == retry.status_code == 403
    assert retry.json() == first.json()
    assert retry.headers["content-type"].startswith("application/problem+json")


def test_a_malformed_key_is_a_422_problem(v1: V1Api, admin: Actor) -> None:
    response = v1.client(admin).post(
        "/api-keys", json={"name": "A", "role": "manager"}, headers={"Idempotency-Key": "x" * 300}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _keys(v1) == 0


class _Echo(BaseModel):
    text: str


@pytest.fixture
def counting_route(v1: V1Api) -> Iterator[list[str]]:
    """A POST route that knows nothing of idempotency, added as any resource's would be."""
    calls: list[str] = []
    v1_app: FastAPI = next(r.app for r in v1.app.routes if getattr(r, "path", None) == "/api/v1")

    def echo(body: _Echo, actor: ActorDep) -> Any:
        calls.append(body.text)
        if body.text == "fail once" and calls.count("fail once") == 1:
            return JSONResponse({"detail": "a provider was down"}, status_code=503)
        if body.text == "crash once" and calls.count("crash once") == 1:
            raise RuntimeError("a bug on the server's side")
        return {"text": body.text, "call": len(calls), "by": actor.username}

    v1_app.router.add_api_route("/echo-for-test", echo, methods=["POST"], status_code=201)
    yield calls


def test_any_post_route_is_idempotent_without_doing_anything(
    v1: V1Api, admin: Actor, counting_route: list[str]
) -> None:
    client = v1.client(admin)
    first = client.post("/echo-for-test", json={"text": "hello"}, headers=KEY)
    retry = client.post("/echo-for-test", json={"text": "hello"}, headers=KEY)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() == {"text": "hello", "call": 1, "by": "ada"}
    assert counting_route == ["hello"]


def test_a_server_error_is_not_kept_so_a_retry_runs_again(
    v1: V1Api, admin: Actor, counting_route: list[str]
) -> None:
    client = v1.client(admin)
    failed = client.post("/echo-for-test", json={"text": "fail once"}, headers=KEY)
    assert failed.status_code == 503
    retry = client.post("/echo-for-test", json={"text": "fail once"}, headers=KEY)
    assert retry.status_code == 201
    assert counting_route == ["fail once", "fail once"]
    again = client.post("/echo-for-test", json={"text": "fail once"}, headers=KEY)
    assert again.json() == retry.json()
    assert counting_route == ["fail once", "fail once"]


def test_a_crash_is_not_kept_so_a_retry_runs_again(
    v1: V1Api, admin: Actor, counting_route: list[str]
) -> None:
    crashed = v1.client(admin).post("/echo-for-test", json={"text": "crash once"}, headers=KEY)
    assert crashed.status_code == 500
    # uvicorn closes the connection after an unhandled error: the retry comes on a new one.
    retry = v1.client(admin).post("/echo-for-test", json={"text": "crash once"}, headers=KEY)
    assert retry.status_code == 201
    assert counting_route == ["crash once", "crash once"]
