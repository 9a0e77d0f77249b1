"""The life cycles in core.lifecycle: the campaign's actions per status, the enrolment's moves,
and the columns each transition writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core import lifecycle
from core.campaign_shape import Step
from core.db import Database
from core.errors import Conflict
from core.lifecycle import (
    CAMPAIGN_TRANSITIONS,
    ENROLMENT_TRANSITIONS,
    Action,
    after_send,
    allowed_actions,
    due_condition,
    move_campaign,
    next_step_delay,
)
from core.models import FINAL_ENROLMENT_STATUSES, Campaign, CampaignLead, CampaignStatus, EnrolmentStatus
from tests.factories import enrol, make_campaign, make_lead, make_tenant

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STEPS = (Step(delay_hours=0), Step(delay_hours=48), Step(delay_hours=24))


@pytest.mark.parametrize(("status", "actions"), [
    (CampaignStatus.draft, {Action.start, Action.schedule, Action.cancel}),
    (CampaignStatus.scheduled, {Action.start, Action.schedule, Action.cancel}),
    (CampaignStatus.running, {Action.pause, Action.cancel, Action.retry_failed}),
    (CampaignStatus.paused, {Action.resume, Action.cancel, Action.retry_failed}),
    (CampaignStatus.completed, {Action.retry_failed}),
    (CampaignStatus.cancelled, set()),
    (CampaignStatus.failed, set()),
])
def test_allowed_actions_for_every_status(status: CampaignStatus, actions: set[Action]) -> None:
    assert allowed_actions(status) == frozenset(actions)
    assert allowed_actions(status.value) == frozenset(actions)


def test_every_campaign_status_has_a_row() -> None:
    assert set(CAMPAIGN_TRANSITIONS) == set(CampaignStatus)


def _campaign(status: CampaignStatus, **columns: Any) -> Campaign:
    return Campaign(name="Spring push", status=status.value, **columns)


@pytest.mark.parametrize(("status", "action", "expected"), [
    (CampaignStatus.draft, Action.start, CampaignStatus.running),
    (CampaignStatus.scheduled, Action.start, CampaignStatus.running),
    (CampaignStatus.draft, Action.schedule, CampaignStatus.scheduled),
    (CampaignStatus.running, Action.pause, CampaignStatus.paused),
    (CampaignStatus.paused, Action.resume, CampaignStatus.running),
    (CampaignStatus.paused, Action.cancel, CampaignStatus.cancelled),
    (CampaignStatus.completed, Action.retry_failed, CampaignStatus.paused),
    (CampaignStatus.running, Action.retry_failed, CampaignStatus.running),
    (CampaignStatus.paused, Action.retry_failed, CampaignStatus.paused),
])
def test_move_campaign_reaches_the_status_of_the_table(
    status: CampaignStatus, action: Action, expected: CampaignStatus
) -> None:
    campaign = _campaign(status)
    move_campaign(campaign, action, now=NOW, reason="why", start_at=NOW + timedelta(hours=1))
    assert campaign.status == expected.value == CAMPAIGN_TRANSITIONS[status][action].value


def test_move_campaign_writes_what_each_action_stamps() -> None:
    started = _campaign(CampaignStatus.scheduled, status_reason="x", scheduled_at=NOW)
    move_campaign(started, Action.start, now=NOW)
    assert (started.status_reason, started.scheduled_at, started.started_at) == (None, None, NOW)
    restarted_at = NOW - timedelta(days=1)
    again = _campaign(CampaignStatus.draft, started_at=restarted_at)
    move_campaign(again, Action.start, now=NOW)
    assert again.started_at == restarted_at  # stamped once

    resumed = _campaign(CampaignStatus.paused, status_reason="budget", scheduled_at=NOW,
                        consecutive_provider_failures=4)
    move_campaign(resumed, Action.resume, now=NOW)
    assert resumed.status_reason is None and resumed.scheduled_at is None
    assert resumed.consecutive_provider_failures == 0

    cancelled = _campaign(CampaignStatus.scheduled, scheduled_at=NOW)
    move_campaign(cancelled, Action.cancel, now=NOW, reason="cancelled by ann")
    assert (cancelled.status_reason, cancelled.completed_at, cancelled.scheduled_at) == (
        "cancelled by ann", NOW, None)

    reopened = _campaign(CampaignStatus.completed, completed_at=NOW)
    move_campaign(reopened, Action.retry_failed, now=NOW, reason="3 failed leads put back")
    assert (reopened.completed_at, reopened.status_reason) == (None, "3 failed leads put back")
    running = _campaign(CampaignStatus.running, status_reason=None)
    move_campaign(running, Action.retry_failed, now=NOW, reason="ignored")
    assert running.status_reason is None


@pytest.mark.parametrize("status", list(CampaignStatus))
def test_an_action_the_status_does_not_allow_is_refused_and_changes_nothing(status: CampaignStatus) -> None:
    for action in set(Action) - allowed_actions(status):
        campaign = _campaign(status)
        with pytest.raises(Conflict, match=f"is {status.value}: it cannot be"):
            move_campaign(campaign, action, now=NOW)
        assert campaign.status == status.value


def test_a_refused_start_of_a_paused_campaign_says_to_resume() -> None:
    with pytest.raises(Conflict, match=r"cannot be started \(resume it instead\)"):
        move_campaign(_campaign(CampaignStatus.paused), Action.start, now=NOW)


# -- enrolments -------------------------------------------------------------------------------


def test_every_enrolment_status_has_its_moves_and_only_failed_leaves_a_final_one() -> None:
    assert set(ENROLMENT_TRANSITIONS) == set(EnrolmentStatus)
    leaving_final = {s for s in FINAL_ENROLMENT_STATUSES if ENROLMENT_TRANSITIONS[s]}
    assert leaving_final == {EnrolmentStatus.failed}
    assert ENROLMENT_TRANSITIONS[EnrolmentStatus.failed] == {EnrolmentStatus.pending}


def _status_of(values: dict[str, Any]) -> EnrolmentStatus:
    return EnrolmentStatus(values["status"])


@pytest.mark.parametrize(("sources", "values"), [
    (lifecycle.CLAIMABLE_ENROLMENT_STATUSES, lifecycle.claimed_values("w1", NOW, NOW)),
    ((EnrolmentStatus.in_progress,), lifecycle.lease_returned_values(NOW)),
    ((EnrolmentStatus.in_progress,), lifecycle.lease_exhausted_values(NOW, 5)),
    ((EnrolmentStatus.in_progress,), lifecycle.send_not_reached_values(NOW, "interrupted")),
    ((EnrolmentStatus.in_progress,), lifecycle.send_unknown_values(NOW, "check")),
    ((EnrolmentStatus.in_progress,), lifecycle.ended_values(EnrolmentStatus.failed, "boom", NOW)),
    ((EnrolmentStatus.in_progress,), lifecycle.ended_values(EnrolmentStatus.skipped, "opted out", NOW)),
    ((EnrolmentStatus.in_progress,), lifecycle.ended_values(EnrolmentStatus.unknown, "check", NOW)),
    ((EnrolmentStatus.awaiting_approval,), lifecycle.approved_values(NOW, 7, edited=False)),
    ((EnrolmentStatus.awaiting_approval,), lifecycle.rejected_values(NOW, 7, "off brand")),
    (lifecycle.OPEN_ENROLMENT_STATUSES, lifecycle.cancelled_values(NOW)),
    ((EnrolmentStatus.failed,), lifecycle.retried_values(NOW, "ann")),
    ((EnrolmentStatus.in_progress,), after_send(STEPS, 0, sent_at=NOW, now=NOW, replied=False)),
    ((EnrolmentStatus.in_progress,), after_send(STEPS, 2, sent_at=NOW, now=NOW, replied=False)),
])
def test_each_transition_is_a_move_of_the_table(sources: tuple[str, ...], values: dict[str, Any]) -> None:
    target = _status_of(values)
    for source in sources:
        assert target in ENROLMENT_TRANSITIONS[EnrolmentStatus(source)], (source, target)


def test_a_reply_stops_only_enrolments_that_wait_and_ends_them_sent_or_skipped() -> None:
    assert set(lifecycle.STOPPABLE_ENROLMENT_STATUSES) < set(lifecycle.OPEN_ENROLMENT_STATUSES)
    assert EnrolmentStatus.in_progress.value not in lifecycle.STOPPABLE_ENROLMENT_STATUSES
    for source in lifecycle.STOPPABLE_ENROLMENT_STATUSES:
        allowed = ENROLMENT_TRANSITIONS[EnrolmentStatus(source)]
        assert {EnrolmentStatus.sent, EnrolmentStatus.skipped} <= allowed
    values = lifecycle.stopped_by_reply_values(NOW, opted_out=True)
    assert values["status_reason"] == "opted out"
    assert (values["next_action_at"], values["completed_at"]) == (None, NOW)


def test_after_send_schedules_the_next_step_after_its_delay_clearing_the_error() -> None:
    values = after_send(STEPS, 0, sent_at=NOW, now=NOW + timedelta(seconds=1), replied=False)
    assert values == {
        "status": "pending", "step": 1, "next_action_at": NOW + timedelta(hours=48), "attempts": 0,
        "approved_at": None, "error": None, "status_reason": "follow-up 1 due",
    }


@pytest.mark.parametrize(("step", "replied"), [(2, False), (0, True)])
def test_after_send_of_the_last_step_or_after_a_reply_is_sent_for_good(step: int, replied: bool) -> None:
    later = NOW + timedelta(seconds=1)
    values = after_send(STEPS, step, sent_at=NOW, now=later, replied=replied, reason="already sent")
    assert values == {
        "status": "sent", "next_action_at": None, "completed_at": later, "approved_at": None,
        "error": None, "status_reason": "already sent",
    }


def test_next_step_delay_reads_the_steps_hours() -> None:
    assert next_step_delay(STEPS, 1) == timedelta(hours=48)
    assert next_step_delay((Step(), Step()), 1) == timedelta(0)
    assert next_step_delay(STEPS, 3) is None


def test_ended_values_keep_the_error_but_for_a_skip_and_refuse_an_open_status() -> None:
    assert lifecycle.ended_values(EnrolmentStatus.failed, "boom", NOW)["error"] == "boom"
    assert "error" not in lifecycle.ended_values(EnrolmentStatus.skipped, "opted out", NOW)
    with pytest.raises(ValueError):
        lifecycle.ended_values(EnrolmentStatus.pending, "no", NOW)


def test_a_reviewer_rejection_is_not_retryable(db: Database) -> None:
    tenant = make_tenant(db)
    campaign = make_campaign(db, tenant)
    rejected = enrol(db, tenant, campaign, make_lead(db, tenant), status="failed")
    errored = enrol(db, tenant, campaign, make_lead(db, tenant), status="failed")
    enrol(db, tenant, campaign, make_lead(db, tenant), status="skipped")
    with db.session(tenant_id=tenant) as session, session.begin():
        values = lifecycle.rejected_values(NOW, None, "off brand")
        session.execute(update(CampaignLead).where(CampaignLead.id == rejected).values(**values))
        session.execute(update(CampaignLead).where(CampaignLead.id == errored).values(error="timeout"))
    with db.session(tenant_id=tenant, read_only=True) as session:
        ids = session.scalars(select(CampaignLead.id).where(*lifecycle.retryable_condition(campaign))).all()
    assert ids == [errored]


def test_due_condition_takes_claimable_enrolments_whose_time_has_come(db: Database) -> None:
    tenant = make_tenant(db)
    campaign = make_campaign(db, tenant)
    cases = {  # status, next action -> due now
        ("pending", None): True,
        ("pending", NOW): True,
        ("deferred", NOW - timedelta(minutes=1)): True,
        ("approved", NOW): True,
        ("deferred", NOW + timedelta(minutes=1)): False,
        ("awaiting_approval", None): False,
        ("in_progress", None): False,
        ("failed", None): False,
    }
    leads = [make_lead(db, tenant) for _ in cases]
    expected = []
    with db.session(tenant_id=tenant) as session, session.begin():
        for lead_id, ((status, at), due) in zip(leads, cases.items(), strict=True):
            enrolment = CampaignLead(campaign_id=campaign, lead_id=lead_id, status=status, next_action_at=at)
            session.add(enrolment)
            session.flush()
            if due:
                expected.append(enrolment.id)
    with db.session(tenant_id=tenant, read_only=True) as session:
        due_ids = session.scalars(
            select(CampaignLead.id).where(due_condition(NOW)).order_by(CampaignLead.id)
        ).all()
        assert session.scalar(select(func.count(CampaignLead.id))) == len(cases)
    assert due_ids == expected
