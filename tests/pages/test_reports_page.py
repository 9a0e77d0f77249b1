"""The Reports page for every role: the funnel, the breakdowns, downloads and the empty states."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from core.db import Database
from core.models import Role
from tests.factories import enrol, make_actor, make_campaign, make_lead, make_tenant
from tests.pages.conftest import PageFactory, table
from tests.pages.markdown_checks import IMAGE, LATEX, assert_shown_escaped

PAGE = "pages/reports.py"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def tenant(db: Database) -> int:
    return make_tenant(db)


@pytest.fixture
def campaigns(db: Database, tenant: int) -> dict[str, int]:
    spring = make_campaign(db, tenant, "Spring", created_at=T0 - timedelta(days=3))
    enrol(db, tenant, spring, make_lead(db, tenant, industry="retail", title="CEO"),
          first_touch="delivered", sent_at=T0, replied_at=T0 + timedelta(hours=2))
    enrol(db, tenant, spring, make_lead(db, tenant, industry="retail"), variant="B",
          first_touch="sent", sent_at=T0)
    enrol(db, tenant, spring, make_lead(db, tenant, industry="software"), variant="B",
          status="pending")
    draft = make_campaign(db, tenant, "Draft", status="draft", created_at=T0)
    return {"spring": spring, "draft": draft}


def _table(app: AppTest, key: str) -> list[dict[str, object]]:
    return table(app, key).to_dict("records")  # type: ignore[return-value]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_funnel(open_page: PageFactory, db: Database, tenant: int,
                                    campaigns: dict[str, int], role: Role) -> None:
    app = open_page(PAGE, make_actor(db, tenant, role))
    assert not app.exception and not app.error
    rows = {r["campaign"]: r for r in _table(app, "reports_funnel")}
    assert set(rows) == {"Spring", "Draft"}
    assert [rows["Spring"][s] for s in ("enrolled", "sent", "delivered", "replied", "opted_out")] == [
        3, 2, 1, 1, 0]
    # The newest campaign with enrolments is picked, not the empty draft.
    assert app.selectbox(key="reports_campaign").value == campaigns["spring"]
    variants = {r["variant"]: r["enrolled"] for r in _table(app, "reports_breakdown_table")}
    assert variants == {"A": 1, "B": 2}
    # The total funnel, the breakdown, replies per day.
    assert len(app.get("plotly_chart")) == 3
    # Funnel and breakdown tables for everyone; activity by user for those who read the audit log.
    assert len(app.get("download_button")) == (6 if role in (Role.admin, Role.owner) else 4)


@pytest.mark.parametrize(
    ("by", "column", "expected"),
    [
        ("industry", "industry", {"retail": 2, "software": 1}),
        ("title", "title", {"CEO": 1, "(none)": 2}),
    ],
)
def test_breakdown_choices(open_page: PageFactory, db: Database, tenant: int,
                           campaigns: dict[str, int], by: str, column: str,
                           expected: dict[str, int]) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    app.radio(key="reports_breakdown").set_value(by).run()
    assert not app.exception
    assert {r[column]: r["enrolled"] for r in _table(app, "reports_breakdown_table")} == expected


def test_breakdown_by_hour(open_page: PageFactory, db: Database, tenant: int,
                           campaigns: dict[str, int]) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    app.radio(key="reports_breakdown").set_value("hour").run()
    rows = _table(app, "reports_breakdown_table")
    assert len(rows) == 24
    assert rows[9]["sent"] == 2 and rows[9]["replied"] == 1


def test_an_empty_campaign_says_so(open_page: PageFactory, db: Database, tenant: int,
                                   campaigns: dict[str, int]) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.manager))
    app.selectbox(key="reports_campaign").set_value(campaigns["draft"]).run()
    assert not app.exception
    assert "Draft has no enrolled leads" in app.info[0].value
    assert len(app.get("plotly_chart")) == 2  # the total funnel and replies per day


def test_no_campaigns_yet(open_page: PageFactory, db: Database, tenant: int) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert "No campaigns yet" in app.info[0].value
    assert not app.dataframe


def test_signed_out_is_stopped(open_page: PageFactory, page_env: str) -> None:
    app = open_page(PAGE, None)
    assert app.error[0].value == "You are not signed in."


def test_a_campaign_name_reaches_the_markdown_escaped(open_page: PageFactory, db: Database,
                                                      tenant: int) -> None:
    name = f"{IMAGE} {LATEX}"
    make_campaign(db, tenant, name, status="draft", created_at=T0)
    app = open_page(PAGE, make_actor(db, tenant, Role.manager))
    assert "has no enrolled leads" in app.info[0].value
    assert_shown_escaped(app, name)


def test_the_total_funnel_counts_each_lead_once(open_page: PageFactory, db: Database,
                                                tenant: int) -> None:
    lead = make_lead(db, tenant)
    for name in ("First", "Second", "Third"):
        campaign = make_campaign(db, tenant, name, created_at=T0)
        enrol(db, tenant, campaign, lead, first_touch="delivered", sent_at=T0, replied_at=T0)
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert not app.exception
    total = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert total["data"][0]["x"] == [1, 1, 1, 1, 0]
    assert "All campaigns, each lead once" == total["layout"]["title"]["text"]


def test_a_period_narrows_every_report(open_page: PageFactory, db: Database, tenant: int,
                                       campaigns: dict[str, int]) -> None:
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert app.selectbox(key="reports_period_preset").value == "All time"
    # The seeded enrolments were made today (the factory's default), the sends on 2 Nov 2026.
    app.selectbox(key="reports_period_preset").set_value("Custom range").run()
    app.date_input(key="reports_period_days").set_value((date(2026, 11, 1), date(2026, 11, 30))).run()
    assert not app.exception
    rows = {r["campaign"]: r for r in _table(app, "reports_funnel")}
    assert rows["Spring"]["enrolled"] == 0  # enrolled outside November
    assert any("1 Nov 2026 to 30 Nov 2026 (UTC days)" in c.value for c in app.caption)
    replies = json.loads(app.get("plotly_chart")[-1].proto.spec)
    assert [t["name"] for t in replies["data"]] == ["leads first contacted", "leads that replied"]
    assert replies["data"][0]["y"] == [2] and replies["data"][1]["y"] == [1]
    app.selectbox(key="reports_period_preset").set_value("Last 7 days").run()
    assert {r["campaign"]: r for r in _table(app, "reports_funnel")}["Spring"]["enrolled"] == 3


def test_activity_by_user_is_for_those_who_read_the_audit_log(open_page: PageFactory, db: Database,
                                                              tenant: int, campaigns: dict[str, int]) -> None:
    analyst = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert "Activity by user" not in [h.value for h in analyst.subheader]
    admin = open_page(PAGE, make_actor(db, tenant, Role.admin, "ada"))
    assert "Activity by user" in [h.value for h in admin.subheader]
    activity = table(admin, "reports_activity")
    assert "system" in activity["user"].tolist()  # creating the users is audited with no user
