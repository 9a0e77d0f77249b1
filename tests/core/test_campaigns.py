"""The campaign service: editing rules, enrolment, the life cycle, permissions and progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.campaign_progress import campaign_progress
from core.campaign_prompts import DEFAULT_EMAIL_PROMPT, DEFAULT_SMS_PROMPT
from core.campaign_rules import CampaignInvalid
from core.campaign_runs import (
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    retry_failed_leads,
    retryable_failed_leads,
    schedule_campaign,
    start_campaign,
)
from core.campaign_ticks import complete_finished_campaigns, start_due_campaigns
from core.campaigns import campaign_messages, create_campaign, update_campaign
from core.db import Database
from core.enrolment import count_audience
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.models import (
    AuditLog,
    Campaign,
    CampaignLead,
    EnrolmentStatus,
    Lead,
    LeadTag,
    Message,
    Role,
    Suppression,
    Tenant,
)
from core.permissions import Actor
from tests.factories import insert_leads, make_actor, make_tenant

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def owner(db: Database) -> Actor:
    """The owner of a tenant whose emails may start: it has the postal address they must carry."""
    tenant_id = make_tenant(db)
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant_id)
                        .values(postal_address="1 Main St, Springfield"))
    return make_actor(db, tenant_id)


def _set_status(db: Database, campaign_id: int, status: str, **values: Any) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == campaign_id)
                        .values(status=status, **values))


def _lead_statuses(db: Database, campaign_id: int) -> dict[str, int]:
    with db.session(system=True, read_only=True) as session:
        return dict(session.execute(
            select(CampaignLead.status, func.count(CampaignLead.id))
            .where(CampaignLead.campaign_id == campaign_id).group_by(CampaignLead.status)
        ).all())


@pytest.mark.parametrize(("channel", "prompt"), [("sms", DEFAULT_SMS_PROMPT),
                                                 ("email", DEFAULT_EMAIL_PROMPT)])
def test_create_without_prompt_gets_the_channels_default(
    db: Database, owner: Actor, channel: str, prompt: str
) -> None:
    campaign = create_campaign(db, owner, name="  Winter   push ", channel=channel)
    assert (campaign.name, campaign.status, campaign.system_prompt) == ("Winter push", "draft", prompt)
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        audit = session.scalars(select(AuditLog.action).where(AuditLog.entity == "campaign")).all()
    assert audit == ["create"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": " "}, "needs a name"),
    ({"channel": "fax"}, "not one of"),
    ({"audience": {"colour": ["red"]}}, "unknown audience filter"),
    ({"steps": [{"delay_hours": -1}]}, "delay_hours"),
    ({"temperature": 3}, "temperature"),
    ({"budget_cap_microusd": -5}, "may not be negative"),
])
def test_create_refuses_invalid_input(
    db: Database, owner: Actor, fields: dict[str, Any], message: str
) -> None:
    values = {"name": "Q4", "channel": "sms", **fields}
    with pytest.raises(ValidationError, match=message):
        create_campaign(db, owner, **values)


@pytest.mark.parametrize(("status", "field", "value", "allowed"), [
    ("draft", "system_prompt", "new prompt", True),
    ("draft", "audience", {"tags": ["vip"]}, True),
    ("draft", "budget_cap_microusd", 5_000_000, True),
    ("scheduled", "budget_cap_microusd", 5_000_000, True),
    ("scheduled", "system_prompt", "new prompt", False),
    ("paused", "sends_per_minute", 30, True),
    ("paused", "budget_cap_microusd", 9_000_000, True),
    ("paused", "scheduled_at", NOW + timedelta(hours=1), True),
    ("paused", "system_prompt", "new prompt", False),
    ("paused", "audience", {"tags": ["vip"]}, False),
    ("running", "name", "Renamed", True),
    ("running", "sends_per_minute", 30, False),
    ("running", "system_prompt", "new prompt", False),
    ("completed", "name", "Renamed", False),
    ("cancelled", "budget_cap_microusd", 1, False),
])
def test_what_may_be_edited_depends_on_the_status(
    db: Database, owner: Actor, status: str, field: str, value: Any, allowed: bool
) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    _set_status(db, campaign.id, status)
    if allowed:
        edited = update_campaign(db, owner, campaign.id, **{field: value})
        assert getattr(edited, field) == value
    else:
        with pytest.raises(Conflict, match=field):
            update_campaign(db, owner, campaign.id, **{field: value})


def test_start_enrols_the_audience_once_leaving_out_suppressed_and_opted_out(
    db: Database, owner: Actor
) -> None:
    tenant_id = owner.tenant_id
    lead_ids = insert_leads(db, tenant_id, 10)
    other_tenant = make_tenant(db, "Other")
    insert_leads(db, other_tenant, 3, start=100)
    with db.session(tenant_id=tenant_id) as session, session.begin():
        session.add(Suppression(channel="sms", address="+12025550001", reason="stop"))
        session.add(Suppression(channel="email", address="lead2@example.com", reason="bounce"))
    with db.session(tenant_id=tenant_id) as session, session.begin():
        session.execute(update(Lead).where(Lead.id == lead_ids[3]).values(opted_out_at=NOW))
        session.execute(update(Lead).where(Lead.id == lead_ids[4]).values(phone=None))
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    assert count_audience(db, owner, campaign.id) == 7

    started = start_campaign(db, owner, campaign.id, now=NOW)
    again = start_campaign(db, owner, campaign.id, now=NOW)

    assert started.status == again.status == "running"
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        enrolled = session.scalars(select(CampaignLead.lead_id).order_by(CampaignLead.lead_id)).all()
        first = session.scalars(select(CampaignLead)).first()
    expected = [i for n, i in enumerate(lead_ids) if n not in (1, 3, 4)]
    assert enrolled == expected  # lead 2 is suppressed on email only, so it stays
    assert first is not None and (first.status, first.step, first.next_action_at) == ("pending", 0, NOW)


@pytest.mark.parametrize(("audience", "expected"), [
    ({}, 6),
    ({"tags": ["vip"]}, 2),
    ({"industries": ["Retail"]}, 3),
    ({"countries": ["gb"]}, 1),
    ({"tags": ["vip"], "industries": ["Retail"]}, 1),
])
def test_the_audience_filter_selects_the_leads(
    db: Database, owner: Actor, audience: dict[str, Any], expected: int
) -> None:
    ids = insert_leads(db, owner.tenant_id, 3, industry="Retail")
    ids += insert_leads(db, owner.tenant_id, 2, start=10, industry="Banking")
    ids += insert_leads(db, owner.tenant_id, 1, start=20, country="GB")
    with db.session(tenant_id=owner.tenant_id) as session, session.begin():
        session.add_all([LeadTag(lead_id=ids[0], tag="vip"), LeadTag(lead_id=ids[4], tag="vip")])
    campaign = create_campaign(db, owner, name="Q4", channel="email", audience=audience)
    start_campaign(db, owner, campaign.id, now=NOW)
    assert sum(_lead_statuses(db, campaign.id).values()) == expected


def test_variants_are_dealt_evenly_and_deterministically(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 9)
    variants = [{"name": n, "prompt": f"variant {n}"} for n in "ABC"]
    campaign = create_campaign(db, owner, name="AB", channel="sms", variants=variants)
    start_campaign(db, owner, campaign.id, now=NOW)
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        rows = session.execute(select(CampaignLead.lead_id, CampaignLead.variant)).all()
    assert {v: sum(1 for _, x in rows if x == v) for v in "ABC"} == {"A": 3, "B": 3, "C": 3}
    assert all(variant == "ABC"[lead_id % 3] for lead_id, variant in rows)


def test_a_scheduled_campaign_starts_when_its_time_comes(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 4)
    campaign = create_campaign(db, owner, name="Later", channel="sms")
    schedule_campaign(db, owner, campaign.id, NOW + timedelta(hours=2), now=NOW)

    assert start_due_campaigns(db, now=NOW + timedelta(hours=1)) == []
    assert start_due_campaigns(db, now=NOW + timedelta(hours=2)) == [campaign.id]

    assert _lead_statuses(db, campaign.id) == {"pending": 4}
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        row = session.get(Campaign, campaign.id)
        assert row is not None and (row.status, row.scheduled_at) == ("running", None)


def test_a_scheduled_start_that_fails_the_preflight_is_held_with_its_reasons(
    db: Database, owner: Actor
) -> None:
    insert_leads(db, owner.tenant_id, 4)
    campaign = create_campaign(db, owner, name="Later", channel="email")
    ready = create_campaign(db, owner, name="Texts", channel="sms")
    schedule_campaign(db, owner, campaign.id, NOW + timedelta(hours=2), now=NOW)
    schedule_campaign(db, owner, ready.id, NOW + timedelta(hours=2), now=NOW)
    # Passed when it was scheduled; the postal address every email needs is gone since.
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == owner.tenant_id).values(postal_address=None))

    assert start_due_campaigns(db, now=NOW + timedelta(hours=2)) == [ready.id]

    assert _lead_statuses(db, campaign.id) == {}
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        row = session.get(Campaign, campaign.id)
        assert row is not None and (row.status, row.scheduled_at) == ("draft", None)
        assert row.status_reason is not None
        assert row.status_reason.startswith("the scheduled start was held: there is no postal address")
        audit = session.scalars(select(AuditLog).where(AuditLog.entity_id == str(campaign.id),
                                                       AuditLog.action == "start_held")).one()
    assert audit.user_id is None and audit.details is not None
    assert list(audit.details["failed_checks"]) == ["Postal address"]
    # Held, not retried: the next tick leaves it alone until a person starts or schedules it.
    assert start_due_campaigns(db, now=NOW + timedelta(hours=3)) == []
    assert _lead_statuses(db, ready.id) == {"pending": 4}


def test_scheduling_a_held_campaign_again_clears_its_reason(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 1)
    campaign = create_campaign(db, owner, name="Later", channel="sms")
    schedule_campaign(db, owner, campaign.id, NOW + timedelta(hours=1), now=NOW)
    with db.session(system=True) as session, session.begin():
        session.execute(update(Lead).values(opted_out_at=NOW))  # the audience is empty now
    assert start_due_campaigns(db, now=NOW + timedelta(hours=1)) == []
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        held = session.get(Campaign, campaign.id)
        assert held is not None and "the audience is empty" in (held.status_reason or "")
    with db.session(system=True) as session, session.begin():
        session.execute(update(Lead).values(opted_out_at=None))
    schedule_campaign(db, owner, campaign.id, NOW + timedelta(hours=3), now=NOW + timedelta(hours=2))
    assert start_due_campaigns(db, now=NOW + timedelta(hours=3)) == [campaign.id]
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        row = session.get(Campaign, campaign.id)
        assert row is not None and (row.status, row.status_reason) == ("running", None)


def test_schedule_refuses_a_time_in_the_past(db: Database, owner: Actor) -> None:
    campaign = create_campaign(db, owner, name="Later", channel="sms")
    with pytest.raises(ValidationError, match="in the past"):
        schedule_campaign(db, owner, campaign.id, NOW - timedelta(minutes=1), now=NOW)


def test_a_paused_campaign_with_a_resume_time_resumes_then(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 1)  # an empty audience does not start
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    start_campaign(db, owner, campaign.id, now=NOW)
    pause_campaign(db, owner, campaign.id)
    update_campaign(db, owner, campaign.id, scheduled_at=NOW + timedelta(hours=1))
    assert start_due_campaigns(db, now=NOW + timedelta(hours=1)) == [campaign.id]
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        assert session.scalar(select(Campaign.status)) == "running"


@pytest.mark.parametrize(("status", "action", "becomes"), [
    ("running", pause_campaign, "paused"),
    ("paused", pause_campaign, None),
    ("paused", resume_campaign, "running"),
    ("running", resume_campaign, None),
    ("completed", cancel_campaign, None),
    ("paused", cancel_campaign, "cancelled"),
    ("draft", cancel_campaign, "cancelled"),
    ("paused", start_campaign, None),
    ("cancelled", start_campaign, None),
])
def test_life_cycle_transitions(
    db: Database, owner: Actor, status: str, action: Any, becomes: str | None
) -> None:
    """`becomes`: the status the action leaves; None: refused, and the campaign is unchanged."""
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    _set_status(db, campaign.id, status)
    if becomes is not None:
        assert action(db, owner, campaign.id).status == becomes
    else:
        with pytest.raises(Conflict, match=status):
            action(db, owner, campaign.id)
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        assert session.scalar(select(Campaign.status)) == (becomes or status)


def test_pause_and_resume_record_the_reason_and_the_audit(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 1)  # an empty audience does not start
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    start_campaign(db, owner, campaign.id, now=NOW)
    paused = pause_campaign(db, owner, campaign.id, reason="waiting for legal")
    resumed = resume_campaign(db, owner, campaign.id)
    assert (paused.status, paused.status_reason) == ("paused", "waiting for legal")
    assert (resumed.status, resumed.status_reason) == ("running", None)
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.entity == "campaign").order_by(AuditLog.id)
        ).all()
    assert actions == ["create", "start", "pause", "resume"]


def test_resume_is_refused_while_the_budget_cap_is_spent(db: Database, owner: Actor) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms", budget_cap_microusd=1000)
    _set_status(db, campaign.id, "paused", spent_microusd=1000)
    with pytest.raises(Conflict, match="raise the cap"):
        resume_campaign(db, owner, campaign.id)
    update_campaign(db, owner, campaign.id, budget_cap_microusd=5000)
    assert resume_campaign(db, owner, campaign.id).status == "running"


def test_cancel_leaves_no_lead_open_or_leased(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 5)
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    start_campaign(db, owner, campaign.id, now=NOW)
    with db.session(system=True) as session, session.begin():
        first, second = session.scalars(select(CampaignLead.id).order_by(CampaignLead.id)).all()[:2]
        session.execute(update(CampaignLead).where(CampaignLead.id == first).values(
            status="in_progress", lease_owner="w1", lease_expires_at=NOW + timedelta(minutes=2)))
        session.execute(update(CampaignLead).where(CampaignLead.id == second).values(status="sent"))

    cancelled = cancel_campaign(db, owner, campaign.id, now=NOW)

    assert cancelled.status == "cancelled"
    assert _lead_statuses(db, campaign.id) == {"cancelled": 4, "sent": 1}
    with db.session(system=True, read_only=True) as session:
        assert session.scalar(select(func.count(CampaignLead.id))
                              .where(CampaignLead.lease_owner.is_not(None))) == 0


def test_a_campaign_completes_when_no_lead_is_left_to_act_on(db: Database, owner: Actor) -> None:
    insert_leads(db, owner.tenant_id, 2)
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    start_campaign(db, owner, campaign.id, now=NOW)
    assert complete_finished_campaigns(db, now=NOW) == []
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).values(status="sent"))
    assert complete_finished_campaigns(db, now=NOW) == [campaign.id]
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        row = session.get(Campaign, campaign.id)
        assert row is not None and (row.status, row.completed_at) == ("completed", NOW)


def test_progress_counts_leads_messages_cost_and_rate(db: Database, owner: Actor) -> None:
    lead_ids = insert_leads(db, owner.tenant_id, 6)
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    start_campaign(db, owner, campaign.id, now=NOW - timedelta(minutes=10))
    with db.session(system=True) as session, session.begin():
        rows = session.scalars(select(CampaignLead).order_by(CampaignLead.id)).all()
        for row in rows[:3]:
            row.status = EnrolmentStatus.sent.value
            row.cost_microusd = 1500
            row.input_tokens, row.output_tokens = 100, 40
            row.updated_at = NOW - timedelta(minutes=1)
            session.add(Message(tenant_id=owner.tenant_id, campaign_id=campaign.id,
                                campaign_lead_id=row.id, lead_id=row.lead_id, step=0,
                                channel="sms", to_address="+12025550000", body="hi",
                                provider="outbox", status="sent",
                                idempotency_key=f"k{row.id}"))
        rows[3].status = EnrolmentStatus.failed.value
        rows[3].updated_at = NOW - timedelta(minutes=1)

    progress = campaign_progress(db, owner, campaign.id, now=NOW)

    assert progress.leads_by_status == {"sent": 3, "failed": 1, "pending": 2}
    assert progress.messages_by_status == {"sent": 3}
    assert (progress.enrolled, progress.open_leads) == (6, 2)
    assert (progress.cost_microusd, progress.input_tokens, progress.output_tokens) == (4500, 300, 120)
    assert progress.leads_per_minute == pytest.approx(4 / 5)
    assert progress.eta_seconds == pytest.approx(2 / (4 / 5) * 60)
    messages = campaign_messages(db, owner, campaign.id)
    assert [m.lead_id for m in messages] == lead_ids[:3]


@pytest.mark.parametrize("action", [
    lambda db, actor, cid: start_campaign(db, actor, cid),
    lambda db, actor, cid: pause_campaign(db, actor, cid),
    lambda db, actor, cid: cancel_campaign(db, actor, cid),
    lambda db, actor, cid: update_campaign(db, actor, cid, name="x"),
    lambda db, actor, cid: create_campaign(db, actor, name="x", channel="sms"),
    lambda db, actor, cid: retry_failed_leads(db, actor, cid),
])
def test_an_analyst_may_not_change_campaigns(db: Database, owner: Actor, action: Any) -> None:
    analyst = make_actor(db, owner.tenant_id, Role.analyst)
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    with pytest.raises(PermissionDenied):
        action(db, analyst, campaign.id)
    assert campaign_progress(db, analyst, campaign.id).status == "draft"


def test_another_tenants_campaign_is_not_found(db: Database, owner: Actor) -> None:
    other = make_actor(db, make_tenant(db, "Other"))
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    with pytest.raises(NotFound):
        start_campaign(db, other, campaign.id)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ({"start": "9:05", "end": "17:00"}, {"start": "09:05", "end": "17:00", "weekdays_only": False}),
        ({"start": "00:00", "end": "00:00", "weekdays_only": True},
         {"start": "00:00", "end": "00:00", "weekdays_only": True}),
    ],
)
def test_send_window_override_is_checked_and_normalised(
    db: Database, given: dict[str, Any] | None, stored: dict[str, Any] | None
) -> None:
    actor = make_actor(db, make_tenant(db), Role.manager)
    campaign = create_campaign(db, actor, name="Window", channel="sms", send_window=given)
    assert campaign.send_window == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [({"start": "25:00", "end": "10:00"}, "send window start '25:00'"),
     ({"start": "08:00", "close": "10:00"}, "unknown send window keys: close")],
)
def test_bad_send_window_override_is_refused(db: Database, given: dict[str, Any], message: str) -> None:
    actor = make_actor(db, make_tenant(db), Role.manager)
    with pytest.raises(ValidationError, match=message):
        create_campaign(db, actor, name="Window", channel="sms", send_window=given)


# -- retrying failed leads -------------------------------------------------------------------


def _enrolments_in(db: Database, owner: Actor, campaign_id: int, statuses: list[dict[str, Any]]) -> list[int]:
    """Start the campaign over one lead per entry and give each enrolment those values."""
    insert_leads(db, owner.tenant_id, len(statuses))
    start_campaign(db, owner, campaign_id, now=NOW)
    with db.session(system=True) as session, session.begin():
        ids = session.scalars(select(CampaignLead.id).where(CampaignLead.campaign_id == campaign_id)
                              .order_by(CampaignLead.id)).all()
        for enrolment_id, values in zip(ids, statuses, strict=True):
            session.execute(update(CampaignLead).where(CampaignLead.id == enrolment_id).values(**values))
    return list(ids)


FAILED = {"status": "failed", "error": "Twilio refused the message (21211)", "attempts": 3,
          "completed_at": NOW, "status_reason": "Twilio refused the message (21211)"}


def test_retry_puts_failed_leads_back_to_pending_and_leaves_the_others(
    db: Database, owner: Actor
) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    ids = _enrolments_in(db, owner, campaign.id, [
        FAILED,
        {**FAILED, "error": "internal error: KeyError: 'x'", "step": 1},
        {"status": "skipped", "status_reason": "the lead opted out"},
        {"status": "unknown", "error": "the provider call failed and may or may not have sent"},
        {"status": "sent", "completed_at": NOW},
        {"status": "failed", "error": "rejected by a reviewer: off brand", "reviewed_by": owner.user_id},
        {"status": "pending"},
    ])
    _set_status(db, campaign.id, "paused", status_reason="paused after 10 provider failures in a row")
    assert retryable_failed_leads(db, owner, campaign.id) == 2

    assert retry_failed_leads(db, owner, campaign.id, now=NOW + timedelta(hours=1)) == 2

    with db.session(system=True, read_only=True) as session:
        rows = {r.id: r for r in session.scalars(select(CampaignLead))}
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "retry_failed")).one()
        campaign_row = session.get(Campaign, campaign.id)
    for retried in ids[:2]:
        row = rows[retried]
        assert (row.status, row.attempts, row.error, row.completed_at, row.lease_owner) == (
            "pending", 0, None, None, None)
        assert row.next_action_at == NOW + timedelta(hours=1)
        assert "retry" in (row.status_reason or "")
    assert rows[ids[1]].step == 1  # retried where it failed, not from the first message
    assert [rows[i].status for i in ids[2:]] == ["skipped", "unknown", "sent", "failed", "pending"]
    assert (audit.user_id, audit.entity_id, audit.details) == (owner.user_id, str(campaign.id), {"leads": 2})
    # The campaign stays paused: the person resumes it when the cause is fixed.
    assert campaign_row is not None and campaign_row.status == "paused"
    assert retryable_failed_leads(db, owner, campaign.id) == 0
    assert retry_failed_leads(db, owner, campaign.id) == 0


def test_retrying_a_completed_campaign_reopens_it_paused(db: Database, owner: Actor) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    _enrolments_in(db, owner, campaign.id, [FAILED, {"status": "sent", "completed_at": NOW}])
    assert complete_finished_campaigns(db, now=NOW) == [campaign.id]
    assert retry_failed_leads(db, owner, campaign.id, now=NOW) == 1
    reopened = campaign_progress(db, owner, campaign.id)
    assert (reopened.status, reopened.completed_at) == ("paused", None)
    assert "resume" in (reopened.status_reason or "")
    assert resume_campaign(db, owner, campaign.id).status == "running"
    assert _lead_statuses(db, campaign.id) == {"pending": 1, "sent": 1}


@pytest.mark.parametrize("status", ["cancelled", "draft", "scheduled"])
def test_retry_is_refused_where_no_lead_can_run(db: Database, owner: Actor, status: str) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    _set_status(db, campaign.id, status)
    with pytest.raises(Conflict, match=f"is {status}"):
        retry_failed_leads(db, owner, campaign.id)


def test_retry_in_another_tenants_campaign_is_not_found(db: Database, owner: Actor) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    _enrolments_in(db, owner, campaign.id, [FAILED])
    other = make_actor(db, make_tenant(db, "Other"))
    with pytest.raises(NotFound):
        retry_failed_leads(db, other, campaign.id)
    assert _lead_statuses(db, campaign.id) == {"failed": 1}


def test_resuming_restarts_the_count_of_provider_failures(db: Database, owner: Actor) -> None:
    campaign = create_campaign(db, owner, name="Q4", channel="sms")
    _set_status(db, campaign.id, "paused", consecutive_provider_failures=10)
    resume_campaign(db, owner, campaign.id)
    with db.session(system=True, read_only=True) as session:
        assert session.scalar(select(Campaign.consecutive_provider_failures)) == 0


def test_every_wrong_field_of_a_new_campaign_is_named(db: Database) -> None:
    owner = make_actor(db, make_tenant(db))
    with pytest.raises(CampaignInvalid) as refused:
        create_campaign(db, owner, name=" ", channel="fax", temperature=9, max_sms_segments=0)
    assert refused.value.field_errors == [
        {"field": "name", "message": "a campaign needs a name"},
        {"field": "channel", "message": "channel 'fax' is not one of: sms, email"},
        {"field": "temperature", "message": "the temperature must be between 0 and 2"},
        {"field": "max_sms_segments", "message": "an SMS may have 1 to 10 segments"},
    ]
    with pytest.raises(CampaignInvalid) as wrong_type:
        create_campaign(db, owner, name="Typed", channel="sms", temperature="hot")
    assert wrong_type.value.field_errors == [
        {"field": "temperature", "message": "temperature has a value of the wrong type"}
    ]
