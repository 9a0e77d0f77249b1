"""Reports over a period: the period presets, the funnel's cohort, replies per day, activity by
user, and the audit log export (CSV and JSON lines), each kept inside its tenant."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.analytics.activity import (
    OTHER_ACTIONS,
    export_audit_log,
    replies_figure,
    replies_over_time,
    user_activity,
)
from core.analytics.funnel import funnel_breakdown, funnel_by_campaign, funnel_totals
from core.analytics.period import ALL_TIME, Period, Preset, period_for
from core.audit import record_audit
from core.db import Database
from core.errors import PermissionDenied, ValidationError
from core.models import AuditLog, Role
from core.permissions import Actor
from tests.factories import enrol, make_actor, make_campaign, make_lead, make_tenant

NOV_2 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.mark.parametrize(
    ("preset", "start", "end"),
    [
        (Preset.last_7, date(2026, 11, 14), TODAY),
        (Preset.last_30, date(2026, 10, 22), TODAY),
        (Preset.last_90, date(2026, 8, 23), TODAY),
        (Preset.this_month, date(2026, 11, 1), TODAY),
        (Preset.all_time, None, None),
    ],
)
def test_presets_count_today_as_the_last_day(preset: Preset, start: date | None, end: date | None) -> None:
    assert period_for(preset, TODAY) == Period(start, end)


def test_a_custom_range_needs_both_days_in_order() -> None:
    assert period_for(Preset.custom, TODAY, custom=(date(2026, 11, 3), date(2026, 11, 5))) == Period(
        date(2026, 11, 3), date(2026, 11, 5))
    with pytest.raises(ValidationError, match="first and the last day"):
        period_for(Preset.custom, TODAY)
    with pytest.raises(ValidationError, match="after the end date"):
        Period(date(2026, 11, 5), date(2026, 11, 3))


def test_a_period_describes_itself() -> None:
    assert ALL_TIME.describe() == "all time"
    assert Period(date(2026, 11, 1), date(2026, 11, 30)).describe() == "1 Nov 2026 to 30 Nov 2026 (UTC days)"
    assert Period(date(2026, 11, 1), date(2026, 11, 30)).slug() == "2026-11-01-to-2026-11-30"


@pytest.fixture
def tenant(db: Database) -> int:
    return make_tenant(db)


def _enrolments(db: Database, tenant: int) -> int:
    """Campaign with one enrolment on 2 Nov (sent 2 Nov, replied 4 Nov) and one on 10 Nov (sent, no reply)."""
    campaign = make_campaign(db, tenant, "Autumn", created_at=NOV_2 - timedelta(days=1))
    enrol(db, tenant, campaign, make_lead(db, tenant, industry="retail"), created_at=NOV_2,
          first_touch="delivered", sent_at=NOV_2, replied_at=NOV_2 + timedelta(days=2))
    enrol(db, tenant, campaign, make_lead(db, tenant, industry="software"), variant="B",
          created_at=NOV_2 + timedelta(days=8), first_touch="sent", sent_at=NOV_2 + timedelta(days=8))
    return campaign


def test_the_funnel_counts_the_enrolments_made_in_the_period(db: Database, tenant: int) -> None:
    campaign = _enrolments(db, tenant)
    actor = make_actor(db, tenant, Role.analyst)
    first_week = Period(date(2026, 11, 1), date(2026, 11, 7))
    row = funnel_by_campaign(db, actor, first_week).iloc[0]
    # The 2 Nov cohort: its reply on 4 Nov counts, the 10 Nov enrolment does not.
    assert [int(row[s]) for s in ("enrolled", "sent", "delivered", "replied")] == [1, 1, 1, 1]
    totals = funnel_totals(db, actor, first_week)
    assert [int(totals[s]) for s in ("enrolled", "sent", "replied")] == [1, 1, 1]
    second_week = Period(date(2026, 11, 8), date(2026, 11, 14))
    second = funnel_totals(db, actor, second_week)
    assert [int(second[s]) for s in ("enrolled", "sent", "replied")] == [1, 1, 0]
    by_variant = funnel_breakdown(db, actor, campaign, "variant", second_week)
    assert by_variant.set_index("variant")["enrolled"].to_dict() == {"B": 1}
    # The last day counts whole: an enrolment at 23:59 on the 10th is in a period ending the 10th.
    assert int(funnel_totals(db, actor, Period(date(2026, 11, 10), date(2026, 11, 10)))["enrolled"]) == 1
    assert int(funnel_totals(db, actor, ALL_TIME)["enrolled"]) == 2


def test_replies_per_day_count_distinct_leads(db: Database, tenant: int) -> None:
    _enrolments(db, tenant)
    lead = make_lead(db, tenant)
    for name in ("One", "Two"):  # one lead in two campaigns, contacted and replying the same day
        campaign = make_campaign(db, tenant, name)
        enrol(db, tenant, campaign, lead, first_touch="sent", sent_at=NOV_2, replied_at=NOV_2)
    actor = make_actor(db, tenant, Role.analyst)
    by_day = replies_over_time(db, actor, Period(date(2026, 11, 1), date(2026, 11, 30)))
    rows = {r["day"]: (r["contacted"], r["replied"]) for r in by_day.to_dict("records")}
    assert rows == {date(2026, 11, 2): (2, 1), date(2026, 11, 4): (0, 1), date(2026, 11, 10): (1, 0)}
    two_days = replies_over_time(db, actor, Period(date(2026, 11, 3), date(2026, 11, 4)))
    assert two_days["replied"].tolist() == [1]
    figure = replies_figure(by_day, ALL_TIME)
    assert [trace.name for trace in figure.data] == ["leads first contacted", "leads that replied"]
    empty = replies_over_time(db, actor, Period(date(2026, 12, 1), date(2026, 12, 2)))
    assert empty.empty
    figure = replies_figure(empty, Period(date(2026, 12, 1), None))
    assert "No first touches or replies" in figure.layout.annotations[0].text


def _audit(db: Database, tenant: int, user_id: int | None, action: str, entity: str, when: datetime,
           **details: object) -> None:
    with db.session(tenant_id=tenant) as session, session.begin():
        entry = record_audit(session, tenant_id=tenant, user_id=user_id, action=action, entity=entity,
                             entity_id=1, details=dict(details))
        entry.created_at = when


def test_activity_by_user_names_the_actions_managers_ask_about(db: Database, tenant: int) -> None:
    admin = make_actor(db, tenant, Role.admin, "ada")
    mia = make_actor(db, tenant, Role.manager, "mia")
    _audit(db, tenant, mia.user_id, "create", "campaign", NOV_2)
    _audit(db, tenant, mia.user_id, "start", "campaign", NOV_2)
    for _ in range(3):
        _audit(db, tenant, mia.user_id, "draft.approve", "campaign_lead", NOV_2)
    _audit(db, tenant, mia.user_id, "draft.reject", "campaign_lead", NOV_2)
    _audit(db, tenant, admin.user_id, "leads.import", "lead_import", NOV_2)
    _audit(db, tenant, admin.user_id, "change_role", "user", NOV_2)
    _audit(db, tenant, None, "complete", "campaign", NOV_2)
    _audit(db, tenant, mia.user_id, "draft.approve", "campaign_lead", NOV_2 + timedelta(days=30))
    other = make_tenant(db, "Other")
    _audit(db, other, None, "draft.approve", "campaign_lead", NOV_2)
    table = user_activity(db, admin, Period(date(2026, 11, 1), date(2026, 11, 30))).set_index("user")
    assert table.loc["Mia (mia)", ["Campaigns created", "Campaigns started", "Drafts approved",
                                   "Drafts rejected"]].tolist() == [1, 1, 3, 1]
    assert table.loc["Ada (ada)", ["Imports", OTHER_ACTIONS]].tolist() == [1, 1]
    # make_actor's own user creations (audited) fall on today's date, outside November.
    assert table.loc["system", OTHER_ACTIONS] == 1
    assert int(table["Drafts approved"].sum()) == 3  # the other tenant's entry is not here
    with pytest.raises(PermissionDenied):
        user_activity(db, mia)


def test_the_audit_log_exports_as_csv_and_json_lines(db: Database, tenant: int) -> None:
    admin = make_actor(db, tenant, Role.admin, "ada")
    _audit(db, tenant, admin.user_id, "leads.import", "=HYPERLINK(\"http://x\")", NOV_2, file="a.csv")
    _audit(db, tenant, None, "complete", "campaign", NOV_2 + timedelta(hours=1))
    _audit(db, tenant, admin.user_id, "start", "campaign", NOV_2 + timedelta(days=40))
    other = make_tenant(db, "Other")
    _audit(db, other, None, "complete", "campaign", NOV_2)
    november = Period(date(2026, 11, 1), date(2026, 11, 30))
    out = io.StringIO(newline="")
    assert export_audit_log(db, admin, out, period=november) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["user"], r["action"]) for r in rows] == [("ada", "leads.import"), ("system", "complete")]
    assert rows[0]["time"].startswith("2026-11-02T09:00")
    assert json.loads(rows[0]["details"]) == {"file": "a.csv"}
    assert rows[0]["entity"] == "'=HYPERLINK(\"http://x\")"  # the formula cannot run in a spreadsheet
    lines = io.StringIO()
    assert export_audit_log(db, admin, lines, period=november, action="complete", fmt="jsonl") == 1
    entry = json.loads(lines.getvalue().splitlines()[0])
    assert (entry["user"], entry["action"], entry["entity"]) == ("system", "complete", "campaign")
    everything = io.StringIO()
    written = export_audit_log(db, admin, everything, fmt="jsonl")
    with db.session(tenant_id=tenant, read_only=True) as session:
        # every entry of this tenant, none of the other's
        assert written == session.scalar(select(func.count(AuditLog.id)))
    with pytest.raises(PermissionDenied):
        export_audit_log(db, make_actor(db, tenant, Role.manager, "mia"), io.StringIO())


def test_an_export_of_an_analyst_is_refused(db: Database, tenant: int) -> None:
    analyst: Actor = make_actor(db, tenant, Role.analyst, "ann")
    with pytest.raises(PermissionDenied):
        export_audit_log(db, analyst, io.StringIO())
