"""/api/v1/webhooks: admins manage endpoints through the same core services as the Admin page;
other roles are refused, another tenant's endpoint is not found, bad input is a problem document."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import Database
from core.models import Role
from core.permissions import Actor
from core.webhooks.endpoints import send_test_event
from tests.api.v1.conftest import V1Api
from tests.factories import make_actor, make_tenant

HOOK = {"url": "https://crm.example.com/hooks", "event_types": ["reply.received", "message.sent"]}


def _create(v1: V1Api, actor_role: Role = Role.admin) -> tuple[Actor, dict[str, Any]]:
    actor = make_actor(v1.db, make_tenant(v1.db), actor_role)
    response = v1.client(actor).post("/webhooks/endpoints", json=HOOK)
    assert response.status_code == 201, response.text
    return actor, response.json()


def test_an_admin_registers_reads_changes_tests_rotates_and_deletes_an_endpoint(v1: V1Api) -> None:
    admin, created = _create(v1)
    client = v1.client(admin)
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["message.sent", "reply.received"]  # in the documented order
    endpoint = f"/webhooks/endpoints/{created['id']}"

    listed = client.get("/webhooks/endpoints").json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]

    got = client.get(endpoint)
    assert got.status_code == 200 and "secret" not in got.json()
    assert got.json()["created_at"].endswith("Z")
    assert client.get(endpoint, headers={"If-None-Match": got.headers["etag"]}).status_code == 304

    patched = client.patch(endpoint, json={"enabled": False, "description": "CRM"})
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["description"], patched.json()["url"]) == (
        False,
        "CRM",
        HOOK["url"],
    )
    assert client.get(endpoint, headers={"If-None-Match": got.headers["etag"]}).status_code == 200

    rotated = client.post(f"{endpoint}/rotate-secret", json={"overlap_hours": 2})
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None

    queued = client.post(f"{endpoint}/test")
    assert queued.status_code == 202
    assert (queued.json()["event_type"], queued.json()["status"]) == ("webhook.test", "pending")
    log = client.get(f"{endpoint}/deliveries").json()
    assert [d["event_id"] for d in log["items"]] == [queued.json()["event_id"]]
    assert log["next_cursor"] is None

    assert client.delete(endpoint).status_code == 204
    assert client.get(endpoint).status_code == 404
    assert client.get("/webhooks/endpoints").json()["items"] == []


@pytest.mark.parametrize("role", [Role.manager, Role.analyst])
def test_roles_below_admin_are_refused_everywhere(v1: V1Api, role: Role) -> None:
    admin, created = _create(v1)
    someone = make_actor(v1.db, admin.tenant_id, role)
    client = v1.client(someone)
    endpoint = f"/webhooks/endpoints/{created['id']}"
    calls = [
        client.get("/webhooks/endpoints"),
        client.post("/webhooks/endpoints", json=HOOK),
        client.get(endpoint),
        client.patch(endpoint, json={"enabled": False}),
        client.delete(endpoint),
        client.post(f"{endpoint}/rotate-secret"),
        client.post(f"{endpoint}/test"),
        client.get(f"{endpoint}/deliveries"),
    ]
    assert [c.status_code for c in calls] == [403] * len(calls)
    assert calls[0].headers["content-type"].startswith("application/problem+json")
    assert v1.client(admin).get(endpoint).json()["enabled"] is True


def test_the_owner_may_manage_webhooks_too(v1: V1Api) -> None:
    _create(v1, Role.owner)


def test_another_tenants_endpoint_is_not_found_through_every_route(v1: V1Api) -> None:
    _, created = _create(v1)
    stranger = make_actor(v1.db, make_tenant(v1.db, "Globex"), Role.admin)
    client = v1.client(stranger)
    endpoint = f"/webhooks/endpoints/{created['id']}"
    calls = [
        client.get(endpoint),
        client.patch(endpoint, json={"enabled": False}),
        client.delete(endpoint),
        client.post(f"{endpoint}/rotate-secret"),
        client.post(f"{endpoint}/test"),
        client.get(f"{endpoint}/deliveries"),
    ]
    assert [c.status_code for c in calls] == [404] * len(calls)
    assert client.get("/webhooks/endpoints").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**HOOK, "event_types": ["message.sent", "lead.created"]}, "event_types", "unknown event type"),
        ({**HOOK, "event_types": []}, "event_types", "at least one"),
        ({**HOOK, "url": "ftp://crm.example.com/hooks"}, "url", "not an http or https URL"),
        ({**HOOK, "url": "https://user:pw@crm.example.com/hooks"}, "url", "no user name or password"),
        ({"event_types": ["message.sent"]}, "url", "Field required"),
    ],
)
def test_bad_input_is_a_problem_document_naming_the_field(
    v1: V1Api, body: dict[str, Any], field: str, words: str
) -> None:
    admin = make_actor(v1.db, make_tenant(v1.db), Role.admin)
    response = v1.client(admin).post("/webhooks/endpoints", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["field"] == field and words in error["message"]


def test_the_delivery_log_pages_stably_while_deliveries_are_added(v1: V1Api, db: Database) -> None:
    admin, created = _create(v1)
    client = v1.client(admin)
    first = [send_test_event(db, admin, created["id"]).event_id for _ in range(5)]
    url = f"/webhooks/endpoints/{created['id']}/deliveries"
    seen: list[str] = []
    page = client.get(url, params={"limit": 2}).json()
    while True:
        seen += [d["event_id"] for d in page["items"]]
        send_test_event(db, admin, created["id"])  # newer: not in this walk
        if page["next_cursor"] is None:
            break
        page = client.get(url, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert seen == list(reversed(first))
    assert client.get(url, params={"status": "delivered"}).json()["items"] == []
    bad = client.get(url, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert client.get(url, params={"status": "lost"}).json()["errors"][0]["field"] == "status"
