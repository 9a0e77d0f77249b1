"""The run monitor's reads, over a campaign run through the real services (claim, pipeline, ledger)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from core import monitor
from core.db import Database
from core.errors import NotFound
from core.models import CampaignLead, Role
from tests.factories import SeededRun, make_actor, make_tenant, seed_run


@pytest.fixture
def run(db: Database) -> SeededRun:
    return seed_run(db, leads=3)


def test_seeded_run_sends_through_the_real_pipeline(run: SeededRun) -> None:
    assert set(run.outcomes.values()) == {"sent"}
    assert len(run.campaign_lead_ids) == 3


def test_recent_events_newest_first_with_lead_names(db: Database, run: SeededRun) -> None:
    analyst = make_actor(db, run.owner.tenant_id, Role.analyst)
    events = monitor.recent_events(db, analyst, run.campaign_id, limit=5)
    assert len(events) == 5
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    assert all(e.lead_name and e.lead_name.startswith("Lead") for e in events)
    assert monitor.recent_events(db, analyst, run.campaign_id, errors_only=True) == []


def test_errors_are_grouped_by_reason_commonest_first(db: Database, run: SeededRun) -> None:
    first, second, third = run.campaign_lead_ids
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id.in_([first, second]))
                        .values(status="failed", error="provider said no"))
        session.execute(update(CampaignLead).where(CampaignLead.id == third)
                        .values(status="unknown", error=None, status_reason="timed out"))
    errors = monitor.errors_by_reason(db, run.owner, run.campaign_id)
    assert [(e.status, e.reason, e.leads) for e in errors] == [
        ("failed", "provider said no", 2), ("unknown", "timed out", 1)]


def test_reasons_that_differ_only_in_numbers_are_one_group(db: Database, run: SeededRun) -> None:
    first, second, third = run.campaign_lead_ids
    texts = {
        first: "twilio error 21211: invalid 'To' number +14155550123",
        second: "twilio error 21211: invalid 'To' number +14155550199",
        third: "twilio error 21610: unsubscribed recipient",
    }
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        for campaign_lead_id, text in texts.items():
            session.execute(update(CampaignLead).where(CampaignLead.id == campaign_lead_id)
                            .values(status="failed", error=text))
    errors = monitor.errors_by_reason(db, run.owner, run.campaign_id)
    assert [(e.leads, e.wordings) for e in errors] == [(2, 2), (1, 1)]
    assert errors[0].reason in (texts[first], texts[second])
    # The codes differ in digits, but the words after them differ too: two groups, not one.
    assert errors[1].reason == texts[third]
    assert monitor.reason_shape(texts[first]) == "twilio error #: invalid 'To' number #"


CAP_WAIT = "contact cap reached (1 message per lead a day, all campaigns together); due again at {}"
HOLIDAY_WAIT = "public holiday in PT (Restoration of Independence Day); due again at 2026-12-02 00:00 WET"


def hold_back(db: Database, run: SeededRun) -> None:
    """Two leads held back by the contact cap (due at different times), one by a holiday."""
    first, second, third = run.campaign_lead_ids[:3]
    reasons = {first: CAP_WAIT.format("2026-12-02 09:14 EST"),
               second: CAP_WAIT.format("2026-12-02 09:15 EST"), third: HOLIDAY_WAIT}
    with db.session(tenant_id=run.owner.tenant_id) as session, session.begin():
        for campaign_lead_id, reason in reasons.items():
            session.execute(update(CampaignLead).where(CampaignLead.id == campaign_lead_id)
                            .values(status="deferred", status_reason=reason, error="an earlier try failed"))


def test_deferred_leads_are_grouped_by_why_they_wait(db: Database, run: SeededRun) -> None:
    hold_back(db, run)
    waits = monitor.waits_by_reason(db, make_actor(db, run.owner.tenant_id, Role.analyst), run.campaign_id)
    assert [(w.leads, w.wordings) for w in waits] == [(2, 2), (1, 1)]
    assert waits[0].reason.startswith("contact cap reached (1 message per lead a day")
    assert waits[1].reason == HOLIDAY_WAIT  # why it waits now, not an earlier try's error
    assert monitor.errors_by_reason(db, run.owner, run.campaign_id) == []  # waiting is no error


def test_enrolment_trace_has_the_log_draft_message_and_cost(db: Database, run: SeededRun) -> None:
    trace = monitor.enrolment_trace(db, run.owner, run.campaign_lead_ids[0])
    assert trace.status == "sent" and trace.trace_id
    assert trace.trace_ids == [trace.trace_id]
    nodes = [e.node for e in trace.events]
    assert nodes[0] != nodes[-1] and "send" in nodes
    assert trace.messages and trace.messages[0].body == trace.draft_body
    assert trace.calls and trace.cost_microusd == sum(c.cost_microusd for c in trace.calls)


def test_recent_enrolments_and_liveness(db: Database, run: SeededRun) -> None:
    recent = monitor.recent_enrolments(db, run.owner, run.campaign_id, limit=2)
    assert len(recent) == 2 and all(r.status == "sent" for r in recent)
    assert monitor.is_live("running") and monitor.is_live("scheduled")
    assert not monitor.is_live("completed") and not monitor.is_live("paused")


def test_another_tenant_sees_nothing(db: Database, run: SeededRun) -> None:
    stranger = make_actor(db, make_tenant(db, "Other"), Role.owner, "stranger")
    assert monitor.recent_events(db, stranger, run.campaign_id) == []
    assert monitor.recent_enrolments(db, stranger, run.campaign_id) == []
    with pytest.raises(NotFound):
        monitor.enrolment_trace(db, stranger, run.campaign_lead_ids[0])

