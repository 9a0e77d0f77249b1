"""Spend views from llm_calls: by day, campaign, model and node; unit costs; the burn-down."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.analytics.costs import (
    NO_CAMPAIGN,
    burndown_figure,
    cost_report,
    spend_by,
    spend_by_day,
    spend_by_day_figure,
    spend_by_figure,
    tokens_figure,
    unit_costs_usd,
)
from core.db import Database
from core.errors import ValidationError
from core.models import Role, Tenant
from core.permissions import Actor
from tests.factories import (
    add_llm_call,
    enrol,
    make_actor,
    make_campaign,
    make_lead,
    make_tenant,
)

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def _at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def seeded(db: Database) -> tuple[Actor, dict[str, int]]:
    tenant = make_tenant(db)
    analyst = make_actor(db, tenant, Role.analyst)
    x = make_campaign(db, tenant, "X")
    y = make_campaign(db, tenant, "Y")
    add_llm_call(db, tenant, campaign_id=x, cost_microusd=1000, created_at=_at(1),
                 input_tokens=400, output_tokens=100)
    add_llm_call(db, tenant, campaign_id=y, cost_microusd=500, created_at=_at(1, 23), model="gpt-4o",
                 node="research", input_tokens=200, output_tokens=20)
    add_llm_call(db, tenant, campaign_id=x, cost_microusd=2000, created_at=_at(3))
    add_llm_call(db, tenant, cost_microusd=300, created_at=_at(3), node="preview")
    add_llm_call(db, tenant, campaign_id=x, cost_microusd=999, created_at=_at(31, month=10))
    for cost, replied in ((1000, _at(2)), (2000, None), (0, None)):
        enrol(db, tenant, x, make_lead(db, tenant), cost_microusd=cost, replied_at=replied)
    enrol(db, tenant, y, make_lead(db, tenant), cost_microusd=500)
    other = make_tenant(db, "Other")
    add_llm_call(db, other, campaign_id=make_campaign(db, other, "Theirs"), cost_microusd=77_777,
                 created_at=_at(2))
    return analyst, {"x": x, "y": y}


def test_spend_by_day_fills_every_day_of_the_range(
        db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 5), now=NOW)
    by_day = spend_by_day(report)
    assert list(by_day["day"]) == [date(2026, 11, d) for d in range(1, 6)]
    assert list(by_day["cost_microusd"]) == [1500, 0, 2300, 0, 0]
    assert list(by_day["calls"]) == [2, 0, 2, 0, 0]
    assert by_day["input_tokens"].iloc[0] == 600
    assert by_day["cost_usd"].iloc[2] == pytest.approx(0.0023)
    assert report.total_microusd == 3800


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("campaign", {"X": 3000, "Y": 500, NO_CAMPAIGN: 300}),
        ("model", {"gpt-4o-mini": 3300, "gpt-4o": 500}),
        ("node", {"compose": 3000, "research": 500, "preview": 300}),
    ],
)
def test_spend_by_dimension(db: Database, seeded: tuple[Actor, dict[str, int]], dimension: str,
                            expected: dict[str, int]) -> None:
    actor, _ = seeded
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 5), now=NOW)
    by = spend_by(report, dimension)  # type: ignore[arg-type]
    assert dict(zip(by[dimension], by["cost_microusd"], strict=True)) == expected
    assert list(by["cost_microusd"]) == sorted(expected.values(), reverse=True)


def test_unit_costs_per_campaign(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 5), now=NOW)
    units = report.unit_costs.set_index("campaign")
    assert units.loc["X", "leads_drafted"] == 2
    assert units.loc["X", "replies"] == 1
    assert units.loc["X", "spend_microusd"] == 3000
    assert units.loc["X", "cost_per_lead_microusd"] == 1500
    assert units.loc["X", "cost_per_reply_microusd"] == 3000
    assert units.loc["Y", "cost_per_lead_microusd"] == 500
    assert units.loc["Y", "cost_per_reply_microusd"] is not None
    assert str(units.loc["Y", "cost_per_reply_microusd"]) == "<NA>"  # no replies: no figure, not infinity


def test_burndown_projects_the_month_linearly(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    with db.session(system=True) as session, session.begin():
        session.get(Tenant, actor.tenant_id).monthly_budget_microusd = 20_000  # type: ignore[union-attr]
    burndown = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 1), now=NOW).burndown
    assert burndown.month_start == date(2026, 11, 1)
    assert burndown.days_in_month == 30
    assert list(burndown.daily["cumulative_microusd"]) == [1500, 1500, 3800, 3800, 3800]
    assert burndown.spent_microusd == 3800  # October's 999 is not this month
    assert burndown.projected_microusd == round(3800 / 4.5 * 30)
    assert burndown.remaining_microusd == 16_200
    assert burndown.projected_over_budget
    figure = burndown_figure(burndown)
    assert figure.layout.title.text == "Budget burn-down"
    assert list(figure.data[0].y) == pytest.approx([0.0185, 0.0185, 0.0162, 0.0162, 0.0162])


def test_burndown_without_budget_shows_spend(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    burndown = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 1), now=NOW).burndown
    assert burndown.budget_microusd is None
    assert burndown.remaining_microusd is None
    assert not burndown.projected_over_budget
    assert burndown_figure(burndown).layout.title.text == "Spend this month"


def test_burndown_early_in_the_month_is_not_extrapolated_from_minutes(db: Database) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.analyst)
    add_llm_call(db, tenant, cost_microusd=1000, created_at=datetime(2026, 11, 1, 0, 5, tzinfo=UTC))
    now = datetime(2026, 11, 1, 0, 10, tzinfo=UTC)
    burndown = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 1), now=now).burndown
    assert burndown.projected_microusd == 30_000


def test_empty_tenant(db: Database) -> None:
    actor = make_actor(db, make_tenant(db), Role.analyst)
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 5), now=NOW)
    assert report.is_empty
    assert report.total_microusd == 0
    assert list(spend_by_day(report)["cost_microusd"]) == [0] * 5
    assert spend_by(report, "model").empty
    assert report.unit_costs.empty
    assert report.burndown.spent_microusd == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 11, 5), date(2026, 11, 1), "after the end date"),
        (date(2025, 1, 1), date(2026, 11, 1), "at most 366 days"),
    ],
)
def test_range_is_checked(db: Database, start: date, end: date, message: str) -> None:
    actor = make_actor(db, make_tenant(db), Role.analyst)
    with pytest.raises(ValidationError, match=message):
        cost_report(db, actor, start=start, end=end, now=NOW)


def test_figures_carry_dollars(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 3), now=NOW)
    by_day = spend_by_day(report)
    assert list(spend_by_day_figure(by_day).data[0].y) == pytest.approx([0.0015, 0.0, 0.0023])
    assert list(tokens_figure(by_day).data[1].y) == [120, 0, 100]
    assert list(spend_by_figure(spend_by(report, "node"), "node").data[0].y) == [
        "compose", "research", "preview"]


def test_unknown_dimension_is_refused(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 3), now=NOW)
    with pytest.raises(ValidationError, match="cannot group spend by 'tenant'"):
        spend_by(report, "tenant")  # type: ignore[arg-type]


def test_unit_costs_in_dollars(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    report = cost_report(db, actor, start=date(2026, 11, 1), end=date(2026, 11, 5), now=NOW)
    table = unit_costs_usd(report).set_index("campaign")
    assert table.loc["X", "cost per lead (USD)"] == pytest.approx(0.0015)
    assert table.loc["X", "spend (USD)"] == pytest.approx(0.003)
    assert str(table.loc["Y", "cost per reply (USD)"]) == "<NA>"


def test_burndown_is_the_same_from_the_range_or_its_own_query(
        db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    covering = cost_report(db, actor, start=date(2026, 10, 20), end=date(2026, 11, 5), now=NOW)
    separate = cost_report(db, actor, start=date(2026, 10, 20), end=date(2026, 10, 31), now=NOW)
    assert covering.burndown.daily.equals(separate.burndown.daily)
    assert covering.burndown.spent_microusd == separate.burndown.spent_microusd == 3800
