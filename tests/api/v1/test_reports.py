"""/api/v1/reports/funnel, /reports/costs, /campaigns/{id}/report and /overview: the figures of the
Reports, Costs and Overview pages, from the same core reads, with money as Money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.analytics.costs import cost_report, spend_by
from core.analytics.funnel import funnel_breakdown, funnel_by_campaign
from core.db import Database
from core.models import Role
from core.permissions import Actor
from core.reports import overview_figures
from tests.api.v1.conftest import V1Api, problem_of
from tests.factories import add_llm_call, enrol, make_actor, make_campaign, make_lead, make_tenant

ROLES = [Role.owner, Role.admin, Role.manager, Role.analyst]
TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
def seeded(db: Database) -> dict[str, int]:
    """Campaign X: variants A (2 sent, 1 delivered and replied) and B (1 failed); campaign Y: 1
    delivered; spend on both across two models and two nodes; another tenant with its own spend."""
    tenant = make_tenant(db)
    x = make_campaign(db, tenant, "X", created_at=TODAY - timedelta(days=3))
    y = make_campaign(db, tenant, "Y", created_at=TODAY - timedelta(days=2))
    enrol(
        db,
        tenant,
        x,
        make_lead(db, tenant),
        first_touch="delivered",
        sent_at=TODAY,
        replied_at=TODAY,
        cost_microusd=3_000,
    )
    enrol(db, tenant, x, make_lead(db, tenant), first_touch="sent", sent_at=TODAY, cost_microusd=2_000)
    enrol(db, tenant, x, make_lead(db, tenant), variant="B", status="failed", first_touch="failed")
    enrol(db, tenant, y, make_lead(db, tenant), first_touch="delivered", sent_at=TODAY)
    add_llm_call(db, tenant, campaign_id=x, cost_microusd=1_500, created_at=TODAY, node="compose")
    add_llm_call(
        db, tenant, campaign_id=x, cost_microusd=500, created_at=TODAY, node="research", model="gpt-4o"
    )
    add_llm_call(db, tenant, campaign_id=x, cost_microusd=250, created_at=TODAY - timedelta(days=1))
    add_llm_call(db, tenant, campaign_id=y, cost_microusd=4_000, created_at=TODAY, model="gpt-4o")
    other = make_tenant(db, "Other")
    theirs = make_campaign(db, other, "Theirs")
    add_llm_call(db, other, campaign_id=theirs, cost_microusd=99_000, created_at=TODAY)
    return {"tenant": tenant, "x": x, "y": y, "other": other, "theirs": theirs}


def _get(v1: V1Api, actor: Actor, path: str, **params: Any) -> dict[str, Any]:
    response = v1.client(actor).get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body



@pytest.mark.parametrize("role", ROLES)
def test_the_funnel_per_campaign_with_totals(
    v1: V1Api, db: Database, seeded: dict[str, int], role: Role
) -> None:
    actor = make_actor(db, seeded["tenant"], role)
    body = _get(v1, actor, "/reports/funnel")
    rows = {row["campaign"]: row for row in body["campaigns"]}
    assert set(rows) == {"X", "Y"}
    assert {k: rows["X"][k] for k in ("enrolled", "sent", "delivered", "replied", "opted_out")} == {
        "enrolled": 3,
        "sent": 2,
        "delivered": 1,
        "replied": 1,
        "opted_out": 0,
    }
    assert rows["X"]["reply_rate"] == 0.5 and rows["Y"]["delivered"] == 1
    expected = funnel_by_campaign(db, actor).set_index("campaign")
    assert rows["X"]["delivery_rate"] == pytest.approx(expected.loc["X", "delivery_rate"])
    assert body["totals"]["enrolled"] == 4 and body["totals"]["sent"] == 3
    assert body["variants"] is None


def test_the_funnel_of_one_campaign_per_variant(v1: V1Api, db: Database, seeded: dict[str, int]) -> None:
    actor = make_actor(db, seeded["tenant"], Role.analyst)
    body = _get(v1, actor, "/reports/funnel", campaign_id=seeded["x"])
    assert [row["campaign_id"] for row in body["campaigns"]] == [seeded["x"]]
    variants = {v["variant"]: v for v in body["variants"]}
    expected = funnel_breakdown(db, actor, seeded["x"], "variant").set_index("variant")
    assert set(variants) == {"A", "B"}
    assert (variants["A"]["enrolled"], variants["A"]["sent"], variants["A"]["replied"]) == (2, 2, 1)
    assert (variants["B"]["enrolled"], variants["B"]["sent"]) == (1, 0)
    assert variants["A"]["reply_rate"] == pytest.approx(expected.loc["A", "reply_rate"])
    assert body["totals"] is None
    # A range without the enrolments counts none of them.
    later = _get(
        v1,
        actor,
        "/reports/funnel",
        campaign_id=seeded["x"],
        **{"from": (TODAY + timedelta(days=1)).date().isoformat()},
    )
    assert later["campaigns"][0]["enrolled"] == 0
    bad = problem_of(
        v1.client(actor).get("/reports/funnel", params={"from": "2026-12-05", "to": "2026-12-01"}), 422
    )
    assert "after the end date" in bad["detail"]


@pytest.mark.parametrize(
    ("group", "keys"),
    [("campaign", {"X", "Y"}), ("model", {"gpt-4o", "gpt-4o-mini"}), ("node", {"compose", "research"})],
)
def test_costs_grouped_by_campaign_model_and_node(
    v1: V1Api, db: Database, seeded: dict[str, int], group: str, keys: set[str]
) -> None:
    actor = make_actor(db, seeded["tenant"], Role.analyst)
    body = _get(v1, actor, "/reports/costs", group=group)
    assert body["group"] == group and body["total"] == {"amount": "0.006250", "currency": "USD"}
    assert {row["key"] for row in body["rows"]} == keys
    report = cost_report(db, actor, start=date_of(body["start"]), end=date_of(body["end"]))
    expected = spend_by(report, group)  # type: ignore[arg-type]
    assert [row["key"] for row in body["rows"]] == [str(k) for k in expected[group]]
    assert [int(row["cost"]["amount"].replace(".", "")) for row in body["rows"]] == list(
        expected["cost_microusd"]
    )


def date_of(text: str) -> Any:
    return datetime.fromisoformat(text).date()


def test_costs_by_day_cover_every_day_of_the_range(v1: V1Api, db: Database, seeded: dict[str, int]) -> None:
    actor = make_actor(db, seeded["tenant"], Role.manager)
    start, end = (TODAY - timedelta(days=2)).date(), TODAY.date()
    body = _get(
        v1, actor, "/reports/costs", group="day", **{"from": start.isoformat(), "to": end.isoformat()}
    )
    assert [row["key"] for row in body["rows"]] == [(start + timedelta(days=n)).isoformat() for n in range(3)]
    assert [row["cost"]["amount"] for row in body["rows"]] == ["0.000000", "0.000250", "0.006000"]
    assert body["rows"][2]["calls"] == 3
    bad = problem_of(v1.client(actor).get("/reports/costs", params={"group": "colour"}), 422)
    assert [e["field"] for e in bad["errors"]] == ["group"]
    too_long = v1.client(actor).get("/reports/costs", params={"from": "2024-01-01", "to": "2026-01-01"})
    assert "at most 366 days" in problem_of(too_long, 422)["detail"]


@pytest.mark.parametrize("role", ROLES)
def test_a_campaigns_report_in_one_document(
    v1: V1Api, db: Database, seeded: dict[str, int], role: Role
) -> None:
    actor = make_actor(db, seeded["tenant"], role)
    body = _get(v1, actor, f"/campaigns/{seeded['x']}/report")
    assert body["campaign_id"] == seeded["x"] and body["funnel"]["campaign"] == "X"
    assert (body["funnel"]["enrolled"], body["funnel"]["sent"], body["funnel"]["replied"]) == (3, 2, 1)
    assert [v["variant"] for v in body["variants"]] == ["A", "B"]
    spend = body["spend"]
    assert spend["total"] == {"amount": "0.002250", "currency": "USD"}
    assert [(r["key"], r["cost"]["amount"], r["calls"]) for r in spend["by_model"]] == [
        ("gpt-4o-mini", "0.001750", 2),
        ("gpt-4o", "0.000500", 1),
    ]
    assert [(r["key"], r["cost"]["amount"]) for r in spend["by_node"]] == [
        ("compose", "0.001750"),
        ("research", "0.000500"),
    ]


def test_reports_of_another_tenant_are_not_found_or_not_counted(
    v1: V1Api, db: Database, seeded: dict[str, int]
) -> None:
    stranger = make_actor(db, seeded["other"], Role.owner)
    problem_of(v1.client(stranger).get(f"/campaigns/{seeded['x']}/report"), 404)
    problem_of(v1.client(stranger).get("/reports/funnel", params={"campaign_id": seeded["x"]}), 404)
    assert [r["campaign"] for r in _get(v1, stranger, "/reports/funnel")["campaigns"]] == ["Theirs"]
    assert _get(v1, stranger, "/reports/costs", group="campaign")["total"]["amount"] == "0.099000"


@pytest.mark.parametrize("role", ROLES)
def test_the_overview_figures(v1: V1Api, db: Database, seeded: dict[str, int], role: Role) -> None:
    actor = make_actor(db, seeded["tenant"], role)
    body = _get(v1, actor, "/overview")
    figures = overview_figures(db, actor)
    assert body["leads"] == figures.leads == 4
    assert body["campaigns_by_status"] == {"running": 2}
    assert body["leads_contacted"] == 3 and body["leads_replied"] == 1
    assert body["reply_rate"] == pytest.approx(1 / 3)
    assert body["spend_this_month"]["amount"] == f"{figures.spend_this_month_microusd / 1_000_000:.6f}"
    assert body["monthly_budget"] is None and body["replies_waiting"] == 0
    assert {c["name"] for c in body["running_campaigns"]} == {"X", "Y"}
    assert [c["enrolled"] for c in body["running_campaigns"] if c["name"] == "X"] == [3]


def test_reports_need_credentials(v1: V1Api) -> None:
    for path in ("/overview", "/reports/funnel", "/reports/costs", "/campaigns", "/enrolments/1"):
        response = v1.client().get(path)
        assert problem_of(response, 401)["status"] == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
