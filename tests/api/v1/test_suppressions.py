"""/api/v1/suppressions: admins list (keyset cursor), add and remove; others are refused; a
recipient's own STOP stays; another tenant's entries are never seen or touched."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.models import AuditLog, Role, Suppression
from core.suppressions import suppress_address
from tests.api.v1.conftest import V1Api, problem_of
from tests.api.v1.world import Tenant, seed_tenant


@pytest.fixture
def home(v1: V1Api) -> Tenant:
    return seed_tenant(v1.db, "Acme")


@pytest.fixture
def away(v1: V1Api) -> Tenant:
    return seed_tenant(v1.db, "Globex", (Role.admin,))



@pytest.mark.parametrize("role", [Role.analyst, Role.manager], ids=lambda r: r.value)
@pytest.mark.parametrize(
    "call",
    [
        lambda c, t: c.get("/suppressions"),
        lambda c, t: c.post("/suppressions", json={"channel": "sms", "address": "2125550100"}),
        lambda c, t: c.delete(f"/suppressions/{t.suppression_id}"),
    ],
    ids=["list", "add", "remove"],
)
def test_only_admins_and_the_owner_touch_the_list(v1: V1Api, home: Tenant, role: Role, call: Any) -> None:
    body = problem_of(call(v1.client(home.actors[role]), home), 403)
    assert f"your role ({role.value}) may not manage suppressions" in body["detail"]
    listed = v1.client(home.admin).get("/suppressions").json()["items"]
    assert [s["address"] for s in listed] == ["nope@example.com"]


@pytest.mark.parametrize("role", [Role.admin, Role.owner], ids=lambda r: r.value)
def test_an_address_is_added_normalised_listed_and_removed(v1: V1Api, home: Tenant, role: Role) -> None:
    client = v1.client(home.actors[role])
    added = client.post("/suppressions", json={"channel": "sms", "address": "(212) 555-0100"})
    assert added.status_code == 201, added.text
    entry = added.json()
    assert (entry["channel"], entry["address"], entry["reason"]) == ("sms", "+12125550100", "manual")
    assert entry["created_at"].endswith("Z")
    again = client.post("/suppressions", json={"channel": "sms", "address": "+1 212 555 0100"})
    assert (again.status_code, again.json()["id"]) == (200, entry["id"])
    assert [s["id"] for s in client.get("/suppressions", params={"channel": "sms"}).json()["items"]] == [
        entry["id"]
    ]
    removed = client.delete(f"/suppressions/{entry['id']}")
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"channel": "sms", "address": "+12125550100", "leads": []}
    with v1.db.session(tenant_id=home.id, read_only=True) as session:
        actions = list(
            session.scalars(
                select(AuditLog.action).where(AuditLog.entity == "suppression").order_by(AuditLog.id)
            )
        )
    assert actions[-2:] == ["suppressions.add", "suppressions.remove"]
    problem_of(client.delete(f"/suppressions/{entry['id']}"), 404)


def test_removing_says_which_leads_stay_opted_out(v1: V1Api, home: Tenant) -> None:
    client = v1.client(home.admin)
    client.post(f"/leads/{home.lead_id}/opt-out").raise_for_status()
    entry = next(s for s in client.get("/suppressions").json()["items"] if s["address"] == "ada@example.com")
    removed = client.delete(f"/suppressions/{entry['id']}").json()
    assert removed["leads"] == [{"lead_id": home.lead_id, "name": "Ada Lovelace", "opted_out": True}]


def test_a_recipients_stop_is_never_removed(v1: V1Api, home: Tenant) -> None:
    with v1.db.session(tenant_id=home.id) as session, session.begin():
        stop = Suppression(channel="sms", address="+12125550111", reason="stop", source="STOP")
        session.add(stop)
        session.flush()
        stop_id = stop.id
    body = problem_of(v1.client(home.admin).delete(f"/suppressions/{stop_id}"), 409)
    assert "STOP" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"channel": "fax", "address": "x"}, "channel"),
        ({"channel": "sms"}, "address"),
        ({"channel": "email", "address": "x", "reason": "stop"}, "reason"),
    ],
    ids=["channel", "missing address", "unknown field"],
)
def test_bad_input_is_a_problem_naming_its_field(
    v1: V1Api, home: Tenant, payload: dict[str, str], field: str
) -> None:
    body = problem_of(v1.client(home.admin).post("/suppressions", json=payload), 422)
    assert field in [error["field"] for error in body["errors"]]


def test_an_address_that_is_no_address_is_a_422(v1: V1Api, home: Tenant) -> None:
    body = problem_of(
        v1.client(home.admin).post("/suppressions", json={"channel": "email", "address": "nope"}), 422
    )
    assert "nope" in body["detail"]


def test_paging_skips_and_repeats_nothing_while_entries_are_added(v1: V1Api, home: Tenant) -> None:
    client = v1.client(home.admin)
    owner = home.actors[Role.owner]
    for n in range(6):
        suppress_address(v1.db, owner, channel="email", address=f"old{n}@example.com")
    expected = [s["id"] for s in client.get("/suppressions", params={"limit": 500}).json()["items"]]
    assert len(expected) == 7
    seen: list[int] = []
    cursor = None
    added = 0
    while True:
        page = client.get(
            "/suppressions", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        suppress_address(v1.db, owner, channel="email", address=f"new{added}@example.com")
        added += 1
    assert seen == expected
    assert added == 3


def test_another_tenants_entries_are_not_seen_or_removed(v1: V1Api, home: Tenant, away: Tenant) -> None:
    stranger = v1.client(away.admin)
    assert [s["id"] for s in stranger.get("/suppressions").json()["items"]] == [away.suppression_id]
    problem_of(stranger.delete(f"/suppressions/{home.suppression_id}"), 404)
    mine = v1.client(home.admin).get("/suppressions").json()["items"]
    assert [s["id"] for s in mine] == [home.suppression_id]
