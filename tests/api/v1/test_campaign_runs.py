"""/api/v1/campaigns/{id}/start, schedule, pause, resume, cancel, estimate and preview: the life
cycle of core.lifecycle with the pre-flight of core.preflight, for every role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.campaigns import create_campaign, get_campaign
from core.db import Database
from core.models import CampaignLead, Lead, LLMCall, Role
from core.permissions import Actor
from core.pipeline.estimate import estimate_campaign_cost
from tests.api.v1.conftest import V1Api, problem_of
from tests.factories import insert_leads, make_actor, make_campaign, make_tenant, zone_at_midday

RUNNERS = [Role.owner, Role.admin, Role.manager]


@pytest.fixture
def tenant(db: Database) -> int:
    tenant_id = make_tenant(db)
    insert_leads(db, tenant_id, 4, time_zone=zone_at_midday())
    return tenant_id



def _enrolled(db: Database, campaign_id: int) -> int:
    with db.session(system=True, read_only=True) as session:
        return (
            session.scalar(select(func.count(CampaignLead.id)).where(CampaignLead.campaign_id == campaign_id))
            or 0
        )


def _draft(db: Database, tenant_id: int, **fields: Any) -> int:
    return create_campaign(
        db, make_actor(db, tenant_id, Role.owner, "drafter"), name="Winter", channel="sms", **fields
    ).id


@pytest.mark.parametrize("role", RUNNERS)
def test_a_runner_takes_a_campaign_through_its_life_cycle(
    v1: V1Api, db: Database, tenant: int, role: Role
) -> None:
    client = v1.client(make_actor(db, tenant, role))
    campaign_id = _draft(db, tenant)
    started = client.post(f"/campaigns/{campaign_id}/start")
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    assert started.json()["allowed_actions"] == ["cancel", "pause", "retry_failed"]
    assert _enrolled(db, campaign_id) == 4
    assert client.post(f"/campaigns/{campaign_id}/start").json()["status"] == "running"  # no change
    assert _enrolled(db, campaign_id) == 4
    paused = client.post(f"/campaigns/{campaign_id}/pause", json={"reason": "checking the copy"})
    assert paused.json()["status"] == "paused" and paused.json()["status_reason"] == "checking the copy"
    assert client.post(f"/campaigns/{campaign_id}/resume").json()["status"] == "running"
    cancelled = client.post(f"/campaigns/{campaign_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["allowed_actions"] == []
    assert cancelled["completed_at"].endswith("Z")


def test_an_analyst_may_run_nothing(v1: V1Api, db: Database, tenant: int) -> None:
    analyst = v1.client(make_actor(db, tenant, Role.analyst))
    draft = _draft(db, tenant)
    running = make_campaign(db, tenant, "Live", status="running")
    paused = make_campaign(db, tenant, "Held", status="paused")
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for response in (
        analyst.post(f"/campaigns/{draft}/start"),
        analyst.post(f"/campaigns/{draft}/schedule", json={"at": at}),
        analyst.post(f"/campaigns/{running}/pause"),
        analyst.post(f"/campaigns/{paused}/resume"),
        analyst.post(f"/campaigns/{running}/cancel"),
        analyst.post(f"/campaigns/{draft}/preview", json={"lead_id": 1}),
    ):
        assert "may not" in problem_of(response, 403)["detail"]
    owner = make_actor(db, tenant, Role.owner)
    assert [get_campaign(db, owner, c).status for c in (draft, running, paused)] == [
        "draft",
        "running",
        "paused",
    ]
    assert _enrolled(db, draft) == 0


@pytest.mark.parametrize(
    ("status", "action", "words"),
    [
        ("draft", "pause", "it cannot be paused"),
        ("draft", "resume", "it cannot be resumed"),
        ("paused", "start", "it cannot be started (resume it instead)"),
        ("running", "resume", "it cannot be resumed"),
        ("completed", "cancel", "it cannot be cancelled"),
        ("cancelled", "start", "it cannot be started"),
        ("running", "schedule", "it cannot be scheduled"),
    ],
)
def test_an_action_the_status_does_not_allow_is_a_409_saying_why(
    v1: V1Api, db: Database, tenant: int, status: str, action: str, words: str
) -> None:
    campaign_id = make_campaign(db, tenant, "Odd", status=status)
    client = v1.client(make_actor(db, tenant, Role.manager))
    body = {"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()} if action == "schedule" else None
    problem = problem_of(client.post(f"/campaigns/{campaign_id}/{action}", json=body), 409)
    assert problem["detail"] == f"campaign 'Odd' is {status}: {words}"
    assert get_campaign(db, make_actor(db, tenant, Role.owner), campaign_id).status == status


def test_a_refused_preflight_lists_every_failed_check(v1: V1Api, db: Database) -> None:
    empty_tenant = make_tenant(db, "Empty")
    campaign_id = _draft(db, empty_tenant, budget_cap_microusd=0)
    client = v1.client(make_actor(db, empty_tenant, Role.manager))
    for response in (
        client.post(f"/campaigns/{campaign_id}/start"),
        client.post(
            f"/campaigns/{campaign_id}/schedule",
            json={"at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()},
        ),
    ):
        problem = problem_of(response, 409)
        assert problem["type"].endswith("/preflight-refused")
        assert [c["label"] for c in problem["checks"]] == ["Audience", "Budget cap"]
        assert all(not c["passed"] and c["blocking"] for c in problem["checks"])
        assert "the audience is empty" in problem["checks"][0]["words"]
        for check in problem["checks"]:
            assert check["words"] in problem["detail"]
    assert get_campaign(db, make_actor(db, empty_tenant, Role.owner), campaign_id).status == "draft"
    assert _enrolled(db, campaign_id) == 0


def test_schedule_takes_an_iso_time_and_refuses_the_past(v1: V1Api, db: Database, tenant: int) -> None:
    client = v1.client(make_actor(db, tenant, Role.manager))
    campaign_id = _draft(db, tenant)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    scheduled = client.post(
        f"/campaigns/{campaign_id}/schedule", json={"at": at.isoformat().replace("+00:00", "Z")}
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["scheduled_at"] == at.isoformat().replace("+00:00", "Z")
    past = client.post(
        f"/campaigns/{campaign_id}/schedule",
        json={"at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
    )
    assert "in the past" in problem_of(past, 422)["detail"]
    missing = problem_of(client.post(f"/campaigns/{campaign_id}/schedule", json={}), 422)
    assert [e["field"] for e in missing["errors"]] == ["at"]


def test_resume_is_refused_while_the_budget_cap_is_spent(v1: V1Api, db: Database, tenant: int) -> None:
    client = v1.client(make_actor(db, tenant, Role.manager))
    campaign_id = _draft(db, tenant)
    client.post(f"/campaigns/{campaign_id}/start")
    client.post(f"/campaigns/{campaign_id}/pause")
    client.patch(f"/campaigns/{campaign_id}", json={"budget_cap": {"amount": "0"}})
    problem = problem_of(client.post(f"/campaigns/{campaign_id}/resume"), 409)
    assert "raise the cap before resuming" in problem["detail"]


@pytest.mark.parametrize("role", [*RUNNERS, Role.analyst])
def test_the_estimate_is_the_run_tabs_as_money(v1: V1Api, db: Database, tenant: int, role: Role) -> None:
    actor = make_actor(db, tenant, role)
    campaign_id = _draft(db, tenant)
    response = v1.client(actor).get(f"/campaigns/{campaign_id}/estimate")
    assert response.status_code == 200
    expected = estimate_campaign_cost(db, db.settings, actor, campaign_id)
    body = response.json()
    assert body["leads"] == expected.leads == 4 and body["leads_exact"] is True
    assert body["total"] == {"amount": f"{expected.total_microusd / 1_000_000:.6f}", "currency": "USD"}
    assert body["cost_per_lead"]["amount"] == f"{expected.cost_per_lead_microusd / 1_000_000:.6f}"
    assert body["model"] == expected.model and body["steps"] == 1


def _calls(db: Database, campaign_id: int) -> int:
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(func.count(LLMCall.id)).where(LLMCall.campaign_id == campaign_id)) or 0


@pytest.mark.parametrize("role", RUNNERS)
def test_preview_drafts_for_a_lead_with_the_offline_model(
    v1: V1Api, db: Database, tenant: int, role: Role
) -> None:
    actor: Actor = make_actor(db, tenant, role)
    campaign_id = _draft(
        db, tenant, variants=[{"name": "A", "prompt": "Time."}, {"name": "B", "prompt": "Story."}]
    )
    with db.session(tenant_id=tenant, read_only=True) as session:
        lead_id = session.scalar(select(Lead.id).order_by(Lead.id).limit(1))
    response = v1.client(actor).post(
        f"/campaigns/{campaign_id}/preview", json={"lead_id": lead_id, "variant": "B"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["variant"] == "B" and body["step"] == 0
    assert body["body"] and body["guard_passed"] is True and body["segments"] >= 1
    assert body["input_tokens"] > 0 and float(body["cost"]["amount"]) > 0
    assert "Story." in body["instructions"]
    assert _calls(db, campaign_id) >= 1  # the preview's model calls are the campaign's spend
    assert _enrolled(db, campaign_id) == 0
    unknown = v1.client(actor).post(
        f"/campaigns/{campaign_id}/preview", json={"lead_id": lead_id, "variant": "Z"}
    )
    assert problem_of(unknown, 422)["detail"]
    absent = v1.client(actor).post(f"/campaigns/{campaign_id}/preview", json={"lead_id": 999_999})
    problem_of(absent, 404)
