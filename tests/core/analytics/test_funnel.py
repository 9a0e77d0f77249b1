"""The funnel per campaign and its breakdowns by variant, industry, title and hour of first send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.analytics.funnel import (
    NONE_LABEL,
    STAGES,
    breakdown_figure,
    campaign_funnel,
    funnel_breakdown,
    funnel_by_campaign,
    funnel_figure,
    funnel_totals,
)
from core.db import Database
from core.errors import NotFound, ValidationError
from core.models import Message, Role
from core.permissions import Actor
from tests.factories import enrol, make_actor, make_campaign, make_lead, make_tenant

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def seeded(db: Database) -> tuple[Actor, dict[str, int]]:
    """Campaign X: 5 enrolments, 2 first touches sent (1 delivered), 1 reply, 1 opt-out after enrolling."""
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.analyst)
    x = make_campaign(db, tenant, "X", created_at=T0 - timedelta(days=2))
    y = make_campaign(db, tenant, "Y", created_at=T0 - timedelta(days=1), channel="email")
    z = make_campaign(db, tenant, "Z", status="draft", created_at=T0)
    at_9 = T0.replace(hour=9, minute=15)
    replied = enrol(db, tenant, x, make_lead(db, tenant, industry="retail", title="CEO"),
                    first_touch="delivered", sent_at=at_9, replied_at=T0 + timedelta(hours=3),
                    created_at=T0)
    opted_out_later = make_lead(db, tenant, industry="retail", title="CTO",
                                opted_out_at=T0 + timedelta(days=1))
    enrol(db, tenant, x, opted_out_later, first_touch="sent", sent_at=at_9.replace(minute=40),
          created_at=T0)
    enrol(db, tenant, x, make_lead(db, tenant, title="CEO"), variant="B", first_touch="failed",
          status="failed", created_at=T0)
    enrol(db, tenant, x, make_lead(db, tenant, industry="software"), variant="B", status="pending",
          created_at=T0)
    opted_out_before = make_lead(db, tenant, industry="software", opted_out_at=T0 - timedelta(days=1))
    enrol(db, tenant, x, opted_out_before, variant="B", status="skipped", created_at=T0)
    with db.session(tenant_id=tenant) as session, session.begin():
        # A delivered follow-up must not count the lead twice.
        first = session.get(Message, 1)
        assert first is not None and first.campaign_lead_id == replied
        session.add(Message(campaign_id=x, campaign_lead_id=replied, lead_id=first.lead_id, step=1,
                            channel="sms", to_address=first.to_address, body="Again",
                            provider="outbox", status="delivered", idempotency_key=f"{replied}-1",
                            sent_at=T0.replace(hour=14)))
    enrol(db, tenant, y, make_lead(db, tenant), first_touch="delivered", sent_at=T0,
          replied_at=T0 + timedelta(hours=1))
    other = make_tenant(db, "Other")
    theirs = make_campaign(db, other, "Theirs")
    enrol(db, other, theirs, make_lead(db, other), first_touch="delivered", sent_at=T0)
    return actor, {"x": x, "y": y, "z": z, "theirs": theirs}


def _stages(row: object) -> tuple[int, ...]:
    return tuple(int(row[s]) for s in STAGES)  # type: ignore[index]


def test_funnel_by_campaign(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, _ = seeded
    funnel = funnel_by_campaign(db, actor).set_index("campaign")
    assert list(funnel.index) == ["Z", "Y", "X"]  # newest first, other tenants' campaigns absent
    assert _stages(funnel.loc["X"]) == (5, 2, 1, 1, 1)
    assert _stages(funnel.loc["Y"]) == (1, 1, 1, 1, 0)
    assert _stages(funnel.loc["Z"]) == (0, 0, 0, 0, 0)
    assert funnel.loc["X", "reply_rate"] == pytest.approx(0.5)
    assert funnel.loc["X", "delivery_rate"] == pytest.approx(0.5)
    assert funnel.loc["Z", "reply_rate"] == 0.0
    assert funnel.loc["Y", "channel"] == "email"
    assert funnel.loc["Z", "status"] == "draft"


@pytest.mark.parametrize("campaign", ["x", "y", "z"])
def test_one_campaigns_funnel_is_the_reports_row_and_variants(
    db: Database, seeded: tuple[Actor, dict[str, int]], campaign: str
) -> None:
    """campaign_funnel (the API's campaign report) reads the same figures as the two reports."""
    actor, ids = seeded
    funnel = campaign_funnel(db, actor, ids[campaign])
    row = funnel_by_campaign(db, actor, campaign_id=ids[campaign]).iloc[0].to_dict()
    assert funnel.campaign == pytest.approx(row)
    assert set(funnel.campaign) == set(row)
    expected = funnel_breakdown(db, actor, ids[campaign], "variant")
    assert funnel.variants == pytest.approx(expected.to_dict("records"))
    assert [list(v) for v in funnel.variants] == [list(expected.columns)] * len(expected)


def test_one_campaigns_funnel_of_another_tenant_is_not_found(
    db: Database, seeded: tuple[Actor, dict[str, int]]
) -> None:
    actor, ids = seeded
    with pytest.raises(NotFound):
        campaign_funnel(db, actor, ids["theirs"])
    with pytest.raises(NotFound):
        funnel_by_campaign(db, actor, campaign_id=ids["theirs"])


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("variant", {"A": (2, 2, 1, 1, 1), "B": (3, 0, 0, 0, 0)}),
        ("industry", {"retail": (2, 2, 1, 1, 1), "software": (2, 0, 0, 0, 0),
                      NONE_LABEL: (1, 0, 0, 0, 0)}),
        ("title", {"CEO": (2, 1, 1, 1, 0), "CTO": (1, 1, 0, 0, 1), NONE_LABEL: (2, 0, 0, 0, 0)}),
    ],
)
def test_breakdowns(db: Database, seeded: tuple[Actor, dict[str, int]], by: str,
                    expected: dict[str, tuple[int, ...]]) -> None:
    actor, ids = seeded
    frame = funnel_breakdown(db, actor, ids["x"], by)  # type: ignore[arg-type]
    assert {row[by]: _stages(row) for _, row in frame.iterrows()} == expected


def test_breakdown_by_hour_has_every_hour(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, ids = seeded
    frame = funnel_breakdown(db, actor, ids["x"], "hour")
    assert list(frame["hour"]) == list(range(24))
    assert _stages(frame.iloc[9]) == (2, 2, 1, 1, 1)
    assert frame.drop(index=9)["enrolled"].sum() == 0
    assert frame.loc[9, "reply_rate"] == pytest.approx(0.5)


def test_breakdown_keeps_the_largest_groups(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, ids = seeded
    frame = funnel_breakdown(db, actor, ids["x"], "industry", limit=1)
    assert len(frame) == 1
    assert frame["enrolled"].iloc[0] == 2


@pytest.mark.parametrize(("campaign", "by", "error"), [
    ("theirs", "variant", NotFound), ("x", "country", ValidationError)])
def test_breakdown_refuses(db: Database, seeded: tuple[Actor, dict[str, int]], campaign: str, by: str,
                           error: type[Exception]) -> None:
    actor, ids = seeded
    with pytest.raises(error):
        funnel_breakdown(db, actor, ids[campaign], by)  # type: ignore[arg-type]


def test_figures(db: Database, seeded: tuple[Actor, dict[str, int]]) -> None:
    actor, ids = seeded
    funnel = funnel_by_campaign(db, actor).set_index("campaign")
    assert list(funnel_figure(funnel.loc["X"], "X").data[0].x) == [5, 2, 1, 1, 1]
    variants = funnel_breakdown(db, actor, ids["x"], "variant")
    figure = breakdown_figure(variants, "variant")
    assert list(figure.data[0].x) == ["A", "B"]
    assert list(figure.data[2].y) == [0.5, 0.0]


def test_empty_tenant(db: Database) -> None:
    actor = make_actor(db, make_tenant(db), Role.analyst)
    assert funnel_by_campaign(db, actor).empty


def test_the_total_funnel_counts_leads_not_enrolments(db: Database) -> None:
    """A lead enrolled, contacted and replying in three campaigns is one lead at every stage."""
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.analyst)
    lead = make_lead(db, tenant, opted_out_at=T0 + timedelta(days=1))
    quiet = make_lead(db, tenant)
    for name in ("First", "Second", "Third"):
        campaign = make_campaign(db, tenant, name)
        enrol(db, tenant, campaign, lead, first_touch="delivered", sent_at=T0, replied_at=T0,
              created_at=T0)
        enrol(db, tenant, campaign, quiet, first_touch="sent", sent_at=T0, created_at=T0)
    totals = funnel_totals(db, actor)
    assert _stages(totals) == (2, 2, 1, 1, 1)
    assert totals["reply_rate"] == pytest.approx(1 / 2)
    assert _stages(funnel_by_campaign(db, actor)[list(STAGES)].sum()) == (6, 6, 3, 3, 3)


def test_the_total_funnel_of_an_empty_tenant(db: Database) -> None:
    totals = funnel_totals(db, make_actor(db, make_tenant(db), Role.analyst))
    assert _stages(totals) == (0, 0, 0, 0, 0) and totals["reply_rate"] == 0.0


def test_undelivered_first_touches_show_beside_the_stages_not_as_sent(db: Database) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.analyst)
    campaign = make_campaign(db, tenant, "Receipts")
    for status in ("delivered", "undelivered", "undelivered", "sent"):
        enrol(db, tenant, campaign, make_lead(db, tenant), first_touch=status, sent_at=T0, created_at=T0)
    row = funnel_by_campaign(db, actor).set_index("campaign").loc["Receipts"]
    assert (int(row["sent"]), int(row["delivered"]), int(row["undelivered"])) == (2, 1, 2)
    columns = list(funnel_by_campaign(db, actor).columns)
    assert columns.index("undelivered") == columns.index("delivered") + 1
