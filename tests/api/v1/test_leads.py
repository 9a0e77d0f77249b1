"""/api/v1/leads: every endpoint for every role, tenant isolation, keyset paging under inserts,
problem details for bad input, ETags, and an import report equal to the one core gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from api.v1.cursors import encode_cursor
from core.leads.importer import import_leads
from core.models import AuditLog, Lead, Role, Suppression
from tests.api.v1.conftest import V1Api, problem_of
from tests.api.v1.world import Tenant, seed_tenant
from tests.factories import insert_leads, make_actor, make_tenant


@dataclass(frozen=True)
class World:
    v1: V1Api
    home: Tenant
    away: Tenant

    def as_(self, role: Role) -> httpx.Client:
        return self.v1.client(self.home.actors[role])


@pytest.fixture
def world(v1: V1Api) -> World:
    return World(v1, seed_tenant(v1.db, "Acme"), seed_tenant(v1.db, "Globex", (Role.admin,)))



CSV = (
    b"Name,Mobile,Email,Company,Country\n"
    b"Grace Hopper,(212) 555-0101,grace@example.com,Navy,US\n"
    b"No Way,12345,,Nowhere,US\n"
    b"Alan Turing,,alan@example.com,Bletchley,Narnia\n"
    b"Grace Again,(212) 555-0101,,Navy,US\n"
)

Call = Callable[[httpx.Client, World], httpx.Response]

# (what, the call, the roles allowed, the status they get); every other role gets 403.
ENDPOINTS: list[tuple[str, Call, set[Role], int]] = [
    ("list", lambda c, w: c.get("/leads"), {Role.manager, Role.admin, Role.owner}, 200),
    ("get", lambda c, w: c.get(f"/leads/{w.home.lead_id}"), {Role.manager, Role.admin, Role.owner}, 200),
    (
        "create",
        lambda c, w: c.post("/leads", json={"email": "new@example.com"}),
        {Role.admin, Role.owner},
        201,
    ),
    (
        "update",
        lambda c, w: c.patch(f"/leads/{w.home.lead_id}", json={"title": "CTO"}),
        {Role.admin, Role.owner},
        200,
    ),
    (
        "erase",
        lambda c, w: c.delete(f"/leads/{w.home.lead_id}", params={"confirm": "Ada Lovelace"}),
        {Role.admin, Role.owner},
        200,
    ),
    (
        "tag",
        lambda c, w: c.post(f"/leads/{w.home.lead_id}/tags", json={"tags": ["fair"]}),
        {Role.admin, Role.owner},
        200,
    ),
    ("untag", lambda c, w: c.delete(f"/leads/{w.home.lead_id}/tags/vip"), {Role.admin, Role.owner}, 200),
    ("opt-out", lambda c, w: c.post(f"/leads/{w.home.lead_id}/opt-out"), {Role.admin, Role.owner}, 200),
    (
        "opt-in",
        lambda c, w: c.post(f"/leads/{w.home.lead_id}/opt-in", json={"reason": "asked by phone"}),
        {Role.admin, Role.owner},
        409,
    ),  # allowed, but the lead is not opted out: refused by core
    (
        "import",
        lambda c, w: c.post("/leads/import", files={"file": ("leads.csv", CSV, "text/csv")}),
        {Role.admin, Role.owner},
        201,
    ),
    (
        "messages",
        lambda c, w: c.get(f"/leads/{w.home.lead_id}/messages"),
        {Role.manager, Role.admin, Role.owner},
        200,
    ),
    (
        "conversation",
        lambda c, w: c.get(f"/leads/{w.home.lead_id}/conversation"),
        {Role.manager, Role.admin, Role.owner},
        200,
    ),
    (
        "message",
        lambda c, w: c.get(f"/messages/{w.home.message_id}"),
        {Role.manager, Role.admin, Role.owner},
        200,
    ),
]


@pytest.mark.parametrize("role", [Role.analyst, Role.manager, Role.admin, Role.owner], ids=lambda r: r.value)
@pytest.mark.parametrize(("what", "call", "allowed", "status"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_each_endpoint_answers_each_role_as_the_permission_table_says(
    world: World, role: Role, what: str, call: Call, allowed: set[Role], status: int
) -> None:
    response = call(world.as_(role), world)
    if role in allowed:
        assert response.status_code == status, response.text
    else:
        body = problem_of(response, 403)
        assert f"your role ({role.value}) may not" in body["detail"]


TENANT_CALLS: list[tuple[str, Call]] = [
    ("get", lambda c, w: c.get(f"/leads/{w.home.lead_id}")),
    ("update", lambda c, w: c.patch(f"/leads/{w.home.lead_id}", json={"title": "CTO"})),
    ("erase", lambda c, w: c.delete(f"/leads/{w.home.lead_id}", params={"confirm": "Ada Lovelace"})),
    ("tag", lambda c, w: c.post(f"/leads/{w.home.lead_id}/tags", json={"tags": ["fair"]})),
    ("untag", lambda c, w: c.delete(f"/leads/{w.home.lead_id}/tags/vip")),
    ("opt-out", lambda c, w: c.post(f"/leads/{w.home.lead_id}/opt-out")),
    ("opt-in", lambda c, w: c.post(f"/leads/{w.home.lead_id}/opt-in", json={"reason": "asked"})),
    ("messages", lambda c, w: c.get(f"/leads/{w.home.lead_id}/messages")),
    ("conversation", lambda c, w: c.get(f"/leads/{w.home.lead_id}/conversation")),
    ("message", lambda c, w: c.get(f"/messages/{w.home.message_id}")),
]


@pytest.mark.parametrize(("what", "call"), TENANT_CALLS, ids=[c[0] for c in TENANT_CALLS])
def test_another_tenants_lead_is_not_found_and_left_alone(world: World, what: str, call: Call) -> None:
    before = world.as_(Role.admin).get(f"/leads/{world.home.lead_id}").json()
    problem_of(call(world.v1.client(world.away.admin), world), 404)
    after = world.as_(Role.admin).get(f"/leads/{world.home.lead_id}").json()
    assert before == after


def test_the_list_never_shows_another_tenants_leads(world: World) -> None:
    mine = world.v1.client(world.away.admin).get("/leads", params={"search": "lovelace"}).json()
    assert [lead["id"] for lead in mine["items"]] == [world.away.lead_id]


def test_a_lead_reads_with_its_fields_alternates_tags_and_opt_out(world: World) -> None:
    with world.v1.db.session(tenant_id=world.home.id) as session, session.begin():
        session.execute(
            update(Lead)
            .where(Lead.id == world.home.lead_id)
            .values(alternates=[{"channel": "sms", "value": "+14155550199", "label": "Home phone"}])
        )
    lead = world.as_(Role.manager).get(f"/leads/{world.home.lead_id}").json()
    assert lead["name"] == "Ada Lovelace"
    assert (lead["phone"], lead["email"], lead["company"]) == (
        "+14155550128",
        "ada@example.com",
        "Engines Ltd",
    )
    assert lead["alternates"] == [{"channel": "sms", "value": "+14155550199", "label": "Home phone"}]
    assert lead["tags"] == ["vip"]
    assert (lead["opted_out"], lead["opted_out_at"]) == (False, None)
    assert lead["created_at"].endswith("Z")


def test_a_get_answers_304_while_the_lead_is_unchanged_and_200_after_an_edit(world: World) -> None:
    client = world.as_(Role.admin)
    first = client.get(f"/leads/{world.home.lead_id}")
    etag = first.headers["etag"]
    again = client.get(f"/leads/{world.home.lead_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    client.patch(f"/leads/{world.home.lead_id}", json={"title": "CTO"}).raise_for_status()
    changed = client.get(f"/leads/{world.home.lead_id}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["title"] == "CTO"


def test_a_created_lead_is_normalised_as_an_import_would_and_audited(world: World) -> None:
    response = world.as_(Role.admin).post(
        "/leads",
        json={
            "first_name": "  GRACE ",
            "last_name": "hopper",
            "phone": "212.555.0101",
            "email": "Grace@Example.COM",
            "website": "https://www.navy.mil/",
            "tags": ["Navy", " VIP "],
        },
    )
    assert response.status_code == 201, response.text
    lead = response.json()
    assert response.headers["location"] == f"/api/v1/leads/{lead['id']}"
    assert (lead["first_name"], lead["last_name"]) == ("Grace", "Hopper")
    assert (lead["phone"], lead["email"]) == ("+12125550101", "grace@example.com")
    assert lead["time_zone"] == "America/New_York"
    assert lead["tags"] == ["navy", "vip"]
    with world.v1.db.session(tenant_id=world.home.id, read_only=True) as session:
        entry = session.scalars(
            select(AuditLog).where(AuditLog.action == "lead.create", AuditLog.entity_id == str(lead["id"]))
        ).one()
    assert entry.user_id == world.home.admin.user_id


@pytest.mark.parametrize(("field", "typed"), [("email", "ADA@example.com"), ("phone", "+1 415 555 0128")])
def test_a_duplicate_is_refused_with_409_naming_the_existing_lead(
    world: World, field: str, typed: str
) -> None:
    body = problem_of(world.as_(Role.admin).post("/leads", json={field: typed}), 409)
    assert f"#{world.home.lead_id}" in body["detail"]
    assert body["errors"] == [{"field": field, "message": body["detail"]}]


def test_a_refused_lead_gets_one_error_per_field(world: World) -> None:
    body = problem_of(world.as_(Role.admin).post("/leads", json={"phone": "12345", "country": "Narnia"}), 422)
    fields = {error["field"]: error["message"] for error in body["errors"]}
    assert set(fields) == {"phone", "country"}
    assert "12345" in fields["phone"]
    assert "Narnia" in fields["country"]
    listed = world.as_(Role.admin).get("/leads").json()["items"]
    assert [lead["id"] for lead in listed] == [world.home.lead_id]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.post("/leads", json={"email": "x@example.com", "nickname": "X"}), "nickname"),
        (lambda c: c.post("/leads", json={"email": ["x@example.com"]}), "email"),
        (lambda c: c.get("/leads", params={"limit": 0}), "limit"),
        (lambda c: c.get("/leads", params={"cursor": "not-a-cursor"}), "cursor"),
        (lambda c: c.get("/leads", params={"cursor": encode_cursor(5)}), "cursor"),
        (lambda c: c.get("/leads", params={"cursor": encode_cursor("2026-11-30T10:30:00", 5)}), "cursor"),
        (lambda c: c.get("/leads", params={"channel": "fax"}), "channel"),
        (lambda c: c.get("/leads", params={"created_from": "yesterday"}), "created_from"),
        (lambda c: c.post("/leads/1/tags", json={"tags": []}), "tags"),
        (lambda c: c.delete("/leads/1"), "confirm"),
        (lambda c: c.post("/leads/import", data={"mapping": "{"}, files={"file": ("a.csv", CSV)}), "mapping"),
    ],
    ids=[
        "unknown field",
        "wrong type",
        "limit",
        "cursor",
        "cursor of one part",
        "cursor without offset",
        "channel",
        "date",
        "no tags",
        "no confirm",
        "mapping",
    ],
)
def test_bad_input_is_a_problem_naming_its_field(
    world: World, call: Callable[[httpx.Client], httpx.Response], field: str
) -> None:
    body = problem_of(call(world.as_(Role.admin)), 422)
    assert field in [error["field"] for error in body["errors"]]


def test_an_edit_changes_only_what_was_sent_and_refuses_with_field_errors(world: World) -> None:
    client = world.as_(Role.admin)
    edited = client.patch(f"/leads/{world.home.lead_id}", json={"title": "CTO", "company": None})
    assert edited.status_code == 200, edited.text
    lead = edited.json()
    assert (lead["title"], lead["company"], lead["email"], lead["tags"]) == (
        "CTO",
        None,
        "ada@example.com",
        ["vip"],
    )
    body = problem_of(client.patch(f"/leads/{world.home.lead_id}", json={"time_zone": "Mars/Olympus"}), 422)
    assert [error["field"] for error in body["errors"]] == ["time_zone"]
    retagged = client.patch(f"/leads/{world.home.lead_id}", json={"tags": ["a", "b"]}).json()
    assert retagged["tags"] == ["a", "b"]


def test_tags_are_added_and_removed(world: World) -> None:
    client = world.as_(Role.admin)
    assert client.post(f"/leads/{world.home.lead_id}/tags", json={"tags": ["Fair", "vip"]}).json()[
        "tags"
    ] == ["fair", "vip"]
    assert client.delete(f"/leads/{world.home.lead_id}/tags/vip").json()["tags"] == ["fair"]


def test_opting_out_suppresses_the_addresses_and_opting_in_takes_it_back(world: World) -> None:
    client = world.as_(Role.admin)
    out = client.post(f"/leads/{world.home.lead_id}/opt-out").json()
    assert (out["changed"], out["suppressions_added"], out["lead"]["opted_out"]) == (True, 2, True)
    assert {s["address"] for s in out["lead"]["suppressions"]} == {"+14155550128", "ada@example.com"}
    again = client.post(f"/leads/{world.home.lead_id}/opt-out").json()
    assert (again["changed"], again["suppressions_added"]) == (False, 0)
    assert client.get("/leads", params={"opted_out": True}).json()["items"][0]["id"] == world.home.lead_id
    back = client.post(f"/leads/{world.home.lead_id}/opt-in", json={"reason": "asked by phone"}).json()
    assert back["lead"]["opted_out"] is False
    assert sorted(back["suppressions_removed"]) == ["+14155550128", "ada@example.com"]
    with world.v1.db.session(tenant_id=world.home.id, read_only=True) as session:
        actions = list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions[-1] == "leads.opt_in"
    assert "leads.opt_out" in actions


def test_a_lead_kept_out_by_its_own_stop_is_not_opted_back_in(world: World) -> None:
    with world.v1.db.session(tenant_id=world.home.id) as session, session.begin():
        session.add(Suppression(channel="sms", address="+14155550128", reason="stop", source="STOP"))
    body = problem_of(
        world.as_(Role.admin).post(f"/leads/{world.home.lead_id}/opt-in", json={"reason": "x"}), 409
    )
    assert "STOP" in body["detail"]


def test_erasure_needs_the_leads_name_and_then_removes_it(world: World) -> None:
    client = world.as_(Role.admin)
    body = problem_of(client.delete(f"/leads/{world.home.lead_id}", params={"confirm": "Ada"}), 422)
    assert "Ada Lovelace" in body["detail"]
    done = client.delete(f"/leads/{world.home.lead_id}", params={"confirm": " ada  lovelace "})
    assert done.status_code == 200, done.text
    assert done.json() == {
        "lead_id": world.home.lead_id,
        "tags": 1,
        "enrolments": 1,
        "messages_anonymised": 1,
        "suppressions_added": 2,
        "audit_entries_redacted": 0,
    }
    problem_of(client.get(f"/leads/{world.home.lead_id}"), 404)
    assert client.get(f"/messages/{world.home.message_id}").json()["to_address"] == "erased"


def _listed(client: httpx.Client, **params: Any) -> list[int]:
    return [lead["id"] for lead in client.get("/leads", params=params).json()["items"]]


def test_the_list_filters_as_the_leads_page_does(world: World) -> None:
    client = world.as_(Role.manager)
    admin = world.as_(Role.admin)
    ada = world.home.lead_id
    email_only = admin.post("/leads", json={"first_name": "Émile", "email": "emile@example.com"}).json()["id"]
    sms_only = admin.post(
        "/leads", json={"first_name": "Zoe", "phone": "2125550177", "tags": ["fair"]}
    ).json()["id"]
    with world.v1.db.session(tenant_id=world.home.id) as session, session.begin():
        session.execute(
            update(Lead).where(Lead.id == ada).values(created_at=datetime(2026, 1, 5, tzinfo=UTC))
        )
    admin.post(f"/leads/{sms_only}/opt-out").raise_for_status()
    assert _listed(client) == [sms_only, email_only, ada]
    assert _listed(client, search="EMILE") == [email_only]
    assert _listed(client, search="212 555 0177") == [sms_only]
    assert _listed(client, tag="fair") == [sms_only]
    assert _listed(client, tag="VIP") == [ada]
    assert _listed(client, opted_out=True) == [sms_only]
    assert _listed(client, opted_out=False) == [email_only, ada]
    assert _listed(client, channel="email") == [email_only, ada]
    assert _listed(client, channel="sms") == [sms_only, ada]
    assert _listed(client, created_before="2026-02-01T00:00:00Z") == [ada]
    assert _listed(client, created_from="2026-02-01T00:00:00Z") == [sms_only, email_only]
    assert _listed(client, created_before="2026-01-05T01:00:00+02:00") == []
    # A time without an offset is UTC.
    assert _listed(client, created_from="2026-01-05", created_before="2026-01-05T00:00:01") == [ada]
    assert _listed(client, created_from="2026-01-05T00:00:00Z", created_before="2026-01-06T00:00:00Z") == [
        ada
    ]


def test_paging_skips_and_repeats_nothing_while_leads_are_inserted(world: World) -> None:
    client = world.as_(Role.manager)
    # Five leads of one import share their created_at: the id orders them.
    same = insert_leads(
        world.v1.db, world.home.id, 5, start=100, created_at=datetime(2026, 11, 1, tzinfo=UTC)
    )
    older = insert_leads(
        world.v1.db, world.home.id, 4, start=110, created_at=datetime(2026, 10, 1, tzinfo=UTC)
    )
    expected = _listed(client, limit=500)
    assert expected == [world.home.lead_id, *sorted(same, reverse=True), *sorted(older, reverse=True)]
    seen: list[int] = []
    arrived: list[int] = []
    cursor = None
    while True:
        page = client.get("/leads", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [lead["id"] for lead in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # Newer leads arrive between pages: they belong before the first page, never in a later one.
        arrived += insert_leads(world.v1.db, world.home.id, 2, start=200 + len(arrived))
    assert seen == expected
    assert len(arrived) == 6
    assert _listed(client, limit=500) == [*sorted(arrived, reverse=True), *expected]


def test_an_import_answers_the_report_core_gives_for_the_same_file(v1: V1Api) -> None:
    api_tenant, core_tenant = make_tenant(v1.db, "Api"), make_tenant(v1.db, "Core")
    api_admin, core_admin = (
        make_actor(v1.db, api_tenant, Role.admin),
        make_actor(v1.db, core_tenant, Role.admin),
    )
    mapping = {"Company": "company"}
    response = v1.client(api_admin).post(
        "/leads/import",
        files={"file": ("leads.csv", CSV, "text/csv")},
        data={"mapping": json.dumps(mapping), "tags": "fair, spring", "on_duplicate": "skip"},
    )
    assert response.status_code == 201, response.text
    report = response.json()
    summary = import_leads(
        v1.db, core_admin, file_name="leads.csv", data=CSV, mapping=mapping, tags=["fair", "spring"]
    )
    assert {**report, "import_id": None} == {
        **summary.counts(),
        "import_id": None,
        "file_name": "leads.csv",
        "rejects": summary.rejects,
        "warnings": summary.warnings,
    }
    assert (report["imported"], report["rejected"], report["duplicates"]) == (2, 1, 1)
    assert report["rejects"][0]["row"] == 3
    assert "12345" in report["rejects"][0]["reason"]
    assert any("Narnia" in w["warning"] for w in report["warnings"])
    listed = v1.client(api_admin).get("/leads", params={"tag": "spring"}).json()["items"]
    assert sorted(lead["email"] for lead in listed) == ["alan@example.com", "grace@example.com"]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("leads.xlsx", b"PK\x03\x04 this is no workbook", "not a valid XLSX workbook"),
        ("leads.csv", b"Name,Email\n", "'leads.csv' has a header row (row 1) but no leads below it"),
    ],
    ids=["broken workbook", "header only"],
)
def test_an_unreadable_file_is_a_422_with_the_reason(
    world: World, name: str, data: bytes, reason: str
) -> None:
    body = problem_of(world.as_(Role.admin).post("/leads/import", files={"file": (name, data)}), 422)
    assert reason in body["detail"]
    assert _listed(world.as_(Role.admin)) == [world.home.lead_id]
