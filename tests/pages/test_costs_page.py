"""The Costs page for every role: figures, charts, downloads, the empty state and range errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from core.db import Database
from core.models import Role, Tenant
from tests.factories import (
    add_llm_call,
    enrol,
    make_actor,
    make_campaign,
    make_lead,
    make_tenant,
)
from tests.pages.conftest import PageFactory

PAGE = "pages/costs.py"


@pytest.fixture
def tenant(db: Database) -> int:
    return make_tenant(db)


def _seed_spend(db: Database, tenant: int) -> None:
    now = datetime.now(UTC)
    campaign = make_campaign(db, tenant, "Autumn")
    add_llm_call(db, tenant, campaign_id=campaign, cost_microusd=1_250_000, created_at=now)
    add_llm_call(db, tenant, campaign_id=campaign, cost_microusd=250_000, created_at=now,
                 node="research", model="gpt-4o")
    enrol(db, tenant, campaign, make_lead(db, tenant), cost_microusd=1_500_000,
          replied_at=now)
    with db.session(system=True) as session, session.begin():
        session.get(Tenant, tenant).monthly_budget_microusd = 1_000_000  # type: ignore[union-attr]


def _metrics(app: object) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_spend(open_page: PageFactory, db: Database, tenant: int, role: Role) -> None:
    _seed_spend(db, tenant)
    app = open_page(PAGE, make_actor(db, tenant, role))
    assert not app.exception
    assert not app.error
    metrics = _metrics(app)
    assert metrics["Spend in range"] == "$1.50"
    assert metrics["Spend this month"] == "$1.50"
    assert metrics["Budget left"] == "over by $0.5000"
    assert metrics["Projected month end"].startswith("$")
    charts = app.get("plotly_chart")
    assert len(charts) == 6  # burn-down, by day, by campaign, model, node, tokens
    downloads = app.get("download_button")
    assert len(downloads) == 2  # every role may export


def test_empty_state(open_page: PageFactory, db: Database, tenant: int) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert not app.exception
    assert "No model calls in this range yet" in app.info[0].value
    assert _metrics(app)["Budget left"] == "no budget set"
    assert len(app.get("plotly_chart")) == 1  # the burn-down still shows the month


def test_a_range_too_long_is_a_message(open_page: PageFactory, db: Database, tenant: int) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    today = datetime.now(UTC).date()
    app.date_input(key="costs_range").set_value((today - timedelta(days=400), today)).run()
    assert not app.exception
    assert "at most 366 days" in app.error[0].value


def test_half_picked_range_asks_for_the_end(open_page: PageFactory, db: Database, tenant: int) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    app.date_input(key="costs_range").set_value((date(2026, 11, 1),)).run()
    assert "Pick the last day" in app.info[0].value


def test_other_tenants_spend_is_not_shown(open_page: PageFactory, db: Database, tenant: int) -> None:
    _seed_spend(db, make_tenant(db, "Other"))
    app = open_page(PAGE, make_actor(db, tenant, Role.owner))
    assert "No model calls in this range yet" in app.info[0].value


def test_signed_out_is_stopped(open_page: PageFactory, page_env: str) -> None:
    app = open_page(PAGE, None)
    assert app.error[0].value == "You are not signed in."
    assert not app.metric


def test_an_empty_month_says_no_spend_instead_of_an_axis(open_page: PageFactory, db: Database,
                                                         tenant: int) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    (chart,) = app.get("plotly_chart")
    layout = json.loads(chart.proto.spec)["layout"]
    assert [a["text"] for a in layout["annotations"]] == ["No spend yet this month"]
    assert layout["yaxis"]["visible"] is False


def test_one_day_of_spend_is_a_day_on_the_chart(open_page: PageFactory, db: Database,
                                                tenant: int) -> None:
    _seed_spend(db, tenant)
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    today = datetime.now(UTC).date()
    app.date_input(key="costs_range").set_value((today, today)).run()
    by_day = next(json.loads(c.proto.spec) for c in app.get("plotly_chart")
                  if json.loads(c.proto.spec)["layout"]["title"]["text"] == "Spend by day")
    axis = by_day["layout"]["xaxis"]
    assert axis["dtick"] == 86_400_000 and axis["tickformat"] == "%b %-d"
    low, high = (pd.Timestamp(v) for v in axis["range"])
    assert high - low >= pd.Timedelta(days=7)
    assert by_day["layout"]["yaxis"]["rangemode"] == "tozero"


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (400, "Pick a range of at most 366 days."),
        (-3, "The start date {start} is after the end date {end}."),
    ],
)
def test_range_errors_are_sentences(open_page: PageFactory, db: Database, tenant: int, days: int,
                                    message: str) -> None:
    """Errors read the same on every page: a capital letter, a full stop, nothing lower-case-first."""
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    end = datetime.now(UTC).date() - timedelta(days=5)
    start = end - timedelta(days=days)
    app.date_input(key="costs_range").set_value((start, end)).run()
    assert [e.value for e in app.error] == [message.format(start=start, end=end)]
