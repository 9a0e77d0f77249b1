"""/api/v1/campaigns: list, read, create, edit and delete, with the editor's rules, roles and tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.campaigns import get_campaign
from core.db import Database
from core.models import Role
from core.permissions import Actor
from tests.api.v1.conftest import V1Api, problem_of
from tests.factories import make_actor, make_campaign, make_tenant

WRITERS = [Role.owner, Role.admin, Role.manager]


@pytest.fixture
def tenant(db: Database) -> int:
    return make_tenant(db)


def _actor(db: Database, tenant_id: int, role: Role) -> Actor:
    return make_actor(db, tenant_id, role)



@pytest.mark.parametrize("role", [Role.owner, Role.admin, Role.manager, Role.analyst])
def test_every_role_reads_the_campaign_with_its_shape(
    v1: V1Api, db: Database, tenant: int, role: Role
) -> None:
    owner = _actor(db, tenant, Role.owner)
    created = v1.client(owner).post(
        "/campaigns",
        json={
            "name": "Spring push",
            "channel": "sms",
            "budget_cap": {"amount": "12.5", "currency": "USD"},
            "steps": [{"delay_hours": 0}, {"delay_hours": 48, "prompt": "Nudge gently."}],
            "variants": [{"name": "A", "prompt": "Time saved."}, {"name": "B", "prompt": "A story."}],
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert created.headers["location"].endswith(f"/api/v1/campaigns/{campaign_id}")
    reader = owner if role == Role.owner else _actor(db, tenant, role)
    response = v1.client(reader).get(f"/campaigns/{campaign_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Spring push" and body["status"] == "draft" and body["channel"] == "sms"
    assert body["budget_cap"] == {"amount": "12.500000", "currency": "USD"}
    assert body["spent"] == {"amount": "0.000000", "currency": "USD"}
    assert body["steps"] == [
        {"delay_hours": 0, "prompt": None},
        {"delay_hours": 48, "prompt": "Nudge gently."},
    ]
    assert [v["name"] for v in body["variants"]] == ["A", "B"]
    assert body["allowed_actions"] == ["cancel", "schedule", "start"]
    assert "system_prompt" in body["editable_fields"]
    assert body["created_at"].endswith("Z")
    view = get_campaign(db, owner, campaign_id)
    assert view.budget_cap_microusd == 12_500_000 and view.steps[1].delay_hours == 48


@pytest.mark.parametrize("role", WRITERS)
def test_writers_create_and_an_analyst_is_refused(v1: V1Api, db: Database, tenant: int, role: Role) -> None:
    writer = _actor(db, tenant, role)
    assert v1.client(writer).post("/campaigns", json={"name": "Ok", "channel": "email"}).status_code == 201
    analyst = _actor(db, tenant, Role.analyst)
    body = problem_of(v1.client(analyst).post("/campaigns", json={"name": "No", "channel": "sms"}), 403)
    assert "analyst" in str(body["detail"])


def test_every_wrong_field_is_named_in_theproblem_of(v1: V1Api, db: Database, tenant: int) -> None:
    owner = _actor(db, tenant, Role.owner)
    response = v1.client(owner).post(
        "/campaigns",
        json={
            "name": "  ",
            "channel": "fax",
            "temperature": 3.5,
            "steps": [{"delay_hours": -1}],
            "audience": {"colour": ["red"]},
            "budget_cap": {"amount": "lots", "currency": "USD"},
        },
    )
    # The request's shapes are read first (all of them at once), then the editor's rules.
    body = problem_of(response, 422)
    assert [e["field"] for e in body["errors"]] == ["budget_cap.amount"]  # type: ignore[union-attr]
    assert "'lots' is not an amount in dollars" in body["errors"][0]["message"]  # type: ignore[index]
    # Money is read first; with a valid amount every other field is reported at once.
    response = v1.client(owner).post(
        "/campaigns",
        json={
            "name": "  ",
            "channel": "fax",
            "temperature": 3.5,
            "steps": [{"delay_hours": -1}],
            "audience": {"colour": ["red"]},
        },
    )
    body = problem_of(response, 422)
    fields = {e["field"]: e["message"] for e in body["errors"]}  # type: ignore[union-attr]
    assert set(fields) == {"name", "channel", "temperature", "steps", "audience"}
    assert fields["name"] == "a campaign needs a name"
    assert fields["channel"] == "channel 'fax' is not one of: sms, email"
    assert fields["steps"] == "step 1: delay_hours must be a number of hours, 0 or more"
    assert "colour" in fields["audience"]


def test_a_wrong_type_and_an_unknown_field_are_field_errors(v1: V1Api, db: Database, tenant: int) -> None:
    client = v1.client(_actor(db, tenant, Role.owner))
    body = problem_of(
        client.post(
            "/campaigns", json={"name": "X", "channel": "sms", "temperature": "hot", "colour": "red"}
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"temperature", "colour"}  # type: ignore[union-attr]
    body = problem_of(
        client.post(
            "/campaigns",
            json={"name": "X", "channel": "sms", "budget_cap": {"amount": "1", "currency": "EUR"}},
        ),
        422,
    )
    assert [e["field"] for e in body["errors"]] == ["budget_cap.currency"]  # type: ignore[union-attr]


def test_patch_changes_what_the_status_allows_and_refuses_the_rest(
    v1: V1Api, db: Database, tenant: int
) -> None:
    owner = _actor(db, tenant, Role.owner)
    client = v1.client(owner)
    draft = client.post("/campaigns", json={"name": "Draft", "channel": "sms"}).json()
    changed = client.patch(
        f"/campaigns/{draft['id']}", json={"system_prompt": "Be warm.", "temperature": 0.2}
    )
    assert changed.status_code == 200
    assert changed.json()["system_prompt"] == "Be warm." and changed.json()["temperature"] == 0.2
    running = make_campaign(db, tenant, "Live", status="running")
    renamed = client.patch(f"/campaigns/{running}", json={"name": "Live now"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Live now"
    body = problem_of(client.patch(f"/campaigns/{running}", json={"system_prompt": "Other"}), 409)
    assert body["detail"] == (
        "campaign 'Live now' is running: system_prompt cannot be changed now (only a draft may change that)"
    )
    body = problem_of(client.patch(f"/campaigns/{running}", json={"sends_per_minute": 5}), 409)
    assert "pause it first" in str(body["detail"])
    # Sending back what it holds is no change: a client may send the whole campaign back.
    same = client.patch(f"/campaigns/{running}", json={"name": "Live now", "system_prompt": "Be brief."})
    assert same.status_code == 200
    assert get_campaign(db, owner, running).system_prompt == "Be brief."
    body = problem_of(client.patch(f"/campaigns/{draft['id']}", json={"max_sms_segments": 40}), 422)
    assert body["errors"] == [{"field": "max_sms_segments", "message": "an SMS may have 1 to 10 segments"}]
    analyst = _actor(db, tenant, Role.analyst)
    problem_of(v1.client(analyst).patch(f"/campaigns/{draft['id']}", json={"name": "Mine"}), 403)


def test_schedule_time_without_an_offset_is_a_field_error(v1: V1Api, db: Database, tenant: int) -> None:
    client = v1.client(_actor(db, tenant, Role.manager))
    draft = client.post("/campaigns", json={"name": "Later", "channel": "sms"}).json()
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    body = problem_of(client.patch(f"/campaigns/{draft['id']}", json={"scheduled_at": naive}), 422)
    assert body["errors"] == [{"field": "scheduled_at", "message": "give the start time with its time zone"}]


@pytest.mark.parametrize("role", WRITERS)
def test_only_a_draft_is_deleted(v1: V1Api, db: Database, tenant: int, role: Role) -> None:
    client = v1.client(_actor(db, tenant, role))
    draft = client.post("/campaigns", json={"name": "Gone", "channel": "sms"}).json()
    assert client.delete(f"/campaigns/{draft['id']}").status_code == 204
    problem_of(client.get(f"/campaigns/{draft['id']}"), 404)
    running = make_campaign(db, tenant, "Stays", status="running")
    body = problem_of(client.delete(f"/campaigns/{running}"), 409)
    assert "only a draft that never sent can be deleted" in str(body["detail"])


def test_an_analyst_cannot_delete(v1: V1Api, db: Database, tenant: int) -> None:
    draft = make_campaign(db, tenant, "Draft", status="draft")
    problem_of(v1.client(_actor(db, tenant, Role.analyst)).delete(f"/campaigns/{draft}"), 403)
    assert get_campaign(db, _actor(db, tenant, Role.owner), draft).status == "draft"


def test_another_tenants_campaign_is_not_found_everywhere(v1: V1Api, db: Database, tenant: int) -> None:
    theirs = make_campaign(db, tenant, "Theirs", status="draft")
    other = _actor(db, make_tenant(db, "Other"), Role.owner)
    client = v1.client(other)
    for response in (
        client.get(f"/campaigns/{theirs}"),
        client.patch(f"/campaigns/{theirs}", json={"name": "Mine"}),
        client.delete(f"/campaigns/{theirs}"),
        client.get(f"/campaigns/{theirs}/estimate"),
        client.post(f"/campaigns/{theirs}/preview", json={"lead_id": 1}),
        client.get(f"/campaigns/{theirs}/report"),
        client.get(f"/campaigns/{theirs}/enrolments"),
        *(client.post(f"/campaigns/{theirs}/{action}") for action in ("start", "pause", "resume", "cancel")),
        client.post(
            f"/campaigns/{theirs}/schedule", json={"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
        ),
    ):
        problem_of(response, 404)
    assert client.get("/campaigns").json()["items"] == []
    assert get_campaign(db, _actor(db, tenant, Role.owner), theirs).name == "Theirs"


def test_etag_answers_304_until_the_campaign_changes(v1: V1Api, db: Database, tenant: int) -> None:
    client = v1.client(_actor(db, tenant, Role.owner))
    campaign = client.post("/campaigns", json={"name": "Tagged", "channel": "sms"}).json()
    first = client.get(f"/campaigns/{campaign['id']}")
    etag = first.headers["etag"]
    again = client.get(f"/campaigns/{campaign['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    client.patch(f"/campaigns/{campaign['id']}", json={"description": "now described"})
    changed = client.get(f"/campaigns/{campaign['id']}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_the_list_pages_newest_first_without_skipping_rows_inserted_meanwhile(
    v1: V1Api, db: Database, tenant: int
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids = [
        make_campaign(
            db, tenant, f"C{n}", status="draft" if n % 2 else "running", created_at=start + timedelta(hours=n)
        )
        for n in range(7)
    ]
    client = v1.client(_actor(db, tenant, Role.analyst))
    first = client.get("/campaigns", params={"limit": 3}).json()
    assert [c["id"] for c in first["items"]] == ids[::-1][:3]
    # A campaign created between pages is newer: it does not push a row of the next page back.
    make_campaign(db, tenant, "Newest", created_at=start + timedelta(days=1))
    seen = [c["id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/campaigns", params={"limit": 3, "cursor": cursor}).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    drafts = client.get("/campaigns", params={"status": "draft"}).json()
    assert [c["id"] for c in drafts["items"]] == [ids[5], ids[3], ids[1]]
    body = problem_of(client.get("/campaigns", params={"status": "sleeping"}), 422)
    assert body["errors"][0]["field"] == "status"  # type: ignore[index]
    body = problem_of(client.get("/campaigns", params={"cursor": "not-a-cursor"}), 422)
    assert body["errors"] == [
        {"field": "cursor", "message": "the cursor is not one this API gave out; start again without it"}
    ]
