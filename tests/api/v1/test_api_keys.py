"""API keys through the real server: shown once, stored hashed, a role per key, revoked and expired
keys refused at once, tenants apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from core.api_keys import create_api_key
from core.models import ApiKey, AuditLog, Role
from core.permissions import Actor
from tests.api.v1.conftest import V1Api
from tests.factories import make_actor, make_tenant


@pytest.fixture
def admin(v1: V1Api) -> Actor:
    return make_actor(v1.db, make_tenant(v1.db, "Acme"), Role.admin, "ada")


def _create(
    client: httpx.Client, name: str = "CRM sync", role: str = "manager", **extra: object
) -> httpx.Response:
    return client.post("/api-keys", json={"name": name, "role": role, **extra})


def _as_key(v1: V1Api, key: str, *, bearer: bool = False) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}
    client = httpx.Client(base_url=v1.base, headers=headers, timeout=60)
    v1.clients.append(client)
    return client


def test_a_created_key_is_shown_once_and_the_database_never_holds_it(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    created = _create(client, expires_days=30)
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["key"]
    assert secret.startswith(f"lf_{body['prefix']}_")
    assert body["role"] == "manager" and body["name"] == "CRM sync" and body["revoked"] is False
    assert body["expires_at"].endswith("Z") and body["last_used_at"] is None
    assert created.headers["location"].endswith(f"/api-keys/{body['id']}")
    listed = client.get("/api-keys").json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert "key" not in listed[0]
    assert "key" not in client.get(f"/api-keys/{body['id']}").json()
    with v1.db.session(system=True, read_only=True) as session:
        row = session.scalars(select(ApiKey)).one()
        stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    secret_part = secret.split("_", 2)[2]
    assert not any(secret_part in value for value in stored)
    assert row.secret_hash != secret_part


@pytest.mark.parametrize("bearer", [False, True])
def test_a_key_calls_as_its_role_with_either_header(v1: V1Api, admin: Actor, bearer: bool) -> None:
    secret = _create(v1.client(admin), "Ops robot", "admin").json()["key"]
    machine = _as_key(v1, secret, bearer=bearer)
    listed = machine.get("/api-keys")
    assert listed.status_code == 200, listed.text
    # What the key does is audited under its name, with no user.
    made = _create(machine, "Made by the robot", "analyst")
    assert made.status_code == 201
    with v1.db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        entry = session.scalars(
            select(AuditLog).where(AuditLog.entity == "api_key", AuditLog.entity_id == str(made.json()["id"]))
        ).one()
    assert entry.user_id is None and entry.details["by"] == "api-key:Ops robot"
    # last_used_at is set by the first use.
    assert v1.client(admin).get(f"/api-keys/{listed.json()['items'][0]['id']}").json()["last_used_at"]


def test_an_analyst_key_is_refused_where_analysts_are(v1: V1Api, admin: Actor) -> None:
    secret = _create(v1.client(admin), "Reports", "analyst").json()["key"]
    refused = _as_key(v1, secret).get("/api-keys")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "analyst" in refused.json()["detail"]


def test_a_revoked_key_is_refused_at_once_and_the_revocation_is_audited(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    created = _create(client, "Old sync", "admin").json()
    machine = _as_key(v1, created["key"])
    assert machine.get("/api-keys").status_code == 200
    assert client.delete(f"/api-keys/{created['id']}").status_code == 204
    refused = machine.get("/api-keys")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get(f"/api-keys/{created['id']}").json()["revoked"] is True
    with v1.db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.entity == "api_key").order_by(AuditLog.id)
        ).all()
    assert actions == ["create", "revoke"]


def test_an_expired_key_is_refused(v1: V1Api, admin: Actor) -> None:
    created = create_api_key(
        v1.db,
        admin,
        name="Trial",
        role=Role.manager,
        expires_days=1,
        now=datetime.now(UTC) - timedelta(days=2),
    )
    refused = _as_key(v1, created.secret).get("/api-keys")
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


@pytest.mark.parametrize(
    "key",
    ["lf_", "lf_abc", "lf_000000000000_wrong", "something-else"],
)
def test_a_wrong_key_is_refused(v1: V1Api, admin: Actor, key: str) -> None:
    real = _create(v1.client(admin)).json()
    if key == "lf_000000000000_wrong":
        key = f"lf_{real['prefix']}_wrong"  # the right prefix, a wrong secret
    refused = _as_key(v1, key).get("/api-keys")
    assert refused.status_code == 401
    assert "not valid" in refused.json()["detail"]


def test_no_key_above_its_creators_role(v1: V1Api, admin: Actor) -> None:
    refused = _create(v1.client(admin), "Too strong", "owner")
    assert refused.status_code == 403
    assert "at most its creator" in refused.json()["detail"]
    owner = make_actor(v1.db, admin.tenant_id, Role.owner, "olga")
    assert _create(v1.client(owner), "Owner's", "owner").status_code == 201


@pytest.mark.parametrize("role", [Role.manager, Role.analyst])
def test_only_admins_and_owners_manage_keys(v1: V1Api, admin: Actor, role: Role) -> None:
    client = v1.client(make_actor(v1.db, admin.tenant_id, role))
    assert client.get("/api-keys").status_code == 403
    assert _create(client, role="analyst").status_code == 403
    key_id = _create(v1.client(admin)).json()["id"]
    assert client.delete(f"/api-keys/{key_id}").status_code == 403


def test_another_tenants_key_is_not_found(v1: V1Api, admin: Actor) -> None:
    key_id = _create(v1.client(admin)).json()["id"]
    stranger = v1.client(make_actor(v1.db, make_tenant(v1.db, "Globex"), Role.owner, "gus"))
    assert stranger.get(f"/api-keys/{key_id}").status_code == 404
    assert stranger.delete(f"/api-keys/{key_id}").status_code == 404
    assert stranger.get("/api-keys").json()["items"] == []
    assert v1.client(admin).get(f"/api-keys/{key_id}").json()["revoked"] is False


def test_bad_input_is_a_problem_with_fields(v1: V1Api, admin: Actor) -> None:
    response = _create(v1.client(admin), "", "superuser", expires_days=-1)
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"name", "role", "expires_days"}


def test_a_single_key_answers_with_an_etag(v1: V1Api, admin: Actor) -> None:
    client = v1.client(admin)
    key_id = _create(client).json()["id"]
    first = client.get(f"/api-keys/{key_id}")
    assert first.status_code == 200
    again = client.get(f"/api-keys/{key_id}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
