"""/api/v1/campaigns/{id}/enrolments and /enrolments/{id}: what the Run monitor lists and drills into."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from core.db import Database
from core.models import CampaignLead, Role
from core.monitor import enrolment_trace
from tests.api.v1.conftest import V1Api, problem_of
from tests.factories import SeededRun, make_actor, make_tenant, seed_run


@pytest.fixture
def run(db: Database) -> SeededRun:
    return seed_run(db, leads=5)



@pytest.mark.parametrize("role", [Role.owner, Role.admin, Role.manager, Role.analyst])
def test_every_role_pages_through_a_campaigns_enrolments(
    v1: V1Api, db: Database, run: SeededRun, role: Role
) -> None:
    client = v1.client(make_actor(db, run.owner.tenant_id, role))
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"/campaigns/{run.campaign_id}/enrolments", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == run.campaign_lead_ids
    item = client.get(f"/campaigns/{run.campaign_id}/enrolments").json()["items"][0]
    assert item["status"] == "sent" and item["trace_id"] and item["lead_name"].startswith("Lead")
    assert item["cost"]["currency"] == "USD" and item["updated_at"].endswith("Z")


def test_the_status_filter_and_a_bad_status(v1: V1Api, db: Database, run: SeededRun) -> None:
    failed = run.campaign_lead_ids[1]
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        session.execute(
            update(CampaignLead)
            .where(CampaignLead.id == failed)
            .values(status="failed", error="provider said no")
        )
    client = v1.client(make_actor(db, run.owner.tenant_id, Role.analyst))
    page = client.get(f"/campaigns/{run.campaign_id}/enrolments", params={"status": "failed"}).json()
    assert [(e["id"], e["error"]) for e in page["items"]] == [(failed, "provider said no")]
    assert page["next_cursor"] is None
    bad = problem_of(client.get(f"/campaigns/{run.campaign_id}/enrolments", params={"status": "lost"}), 422)
    assert [e["field"] for e in bad["errors"]] == ["status"]


@pytest.mark.parametrize("role", [Role.owner, Role.manager, Role.analyst])
def test_one_enrolment_has_its_node_by_node_log_and_trace_id(
    v1: V1Api, db: Database, run: SeededRun, role: Role
) -> None:
    actor = make_actor(db, run.owner.tenant_id, role)
    enrolment_id = run.campaign_lead_ids[0]
    response = v1.client(actor).get(f"/enrolments/{enrolment_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    trace = enrolment_trace(db, actor, enrolment_id)
    assert body["id"] == enrolment_id and body["campaign_id"] == run.campaign_id
    assert body["trace_id"] == trace.trace_id and body["trace_id"]
    assert body["trace_ids"] == trace.trace_ids
    assert [e["node"] for e in body["events"]] == [e.node for e in trace.events]
    assert {"validate", "compose", "guard", "send"} <= {e["node"] for e in body["events"]}
    assert all(e["trace_id"] == trace.trace_id for e in body["events"])
    assert [m["status"] for m in body["messages"]] == ["sent"]
    assert body["messages"][0]["body"] == trace.messages[0].body
    assert body["calls"] and body["calls"][0]["cost"]["currency"] == "USD"
    assert body["cost"]["amount"] == f"{trace.cost_microusd / 1_000_000:.6f}"
    etag = response.headers["etag"]
    assert (
        v1.client(actor).get(f"/enrolments/{enrolment_id}", headers={"If-None-Match": etag}).status_code
        == 304
    )


def test_another_tenants_enrolment_is_not_found(v1: V1Api, db: Database, run: SeededRun) -> None:
    other = v1.client(make_actor(db, make_tenant(db, "Other"), Role.owner))
    problem_of(other.get(f"/enrolments/{run.campaign_lead_ids[0]}"), 404)
    problem_of(other.get(f"/campaigns/{run.campaign_id}/enrolments"), 404)
