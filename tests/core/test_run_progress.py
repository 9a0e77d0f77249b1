"""A run's progress per step, its next due time, its sends per minute and its status in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from core.campaign_progress import campaign_progress
from core.campaign_runs import cancel_campaign, pause_campaign, start_campaign
from core.campaigns import create_campaign
from core.db import Database
from core.models import Campaign, CampaignLead, Message, Tenant
from core.permissions import Actor
from tests.factories import insert_leads, make_actor, make_tenant

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday
FOLLOW_UP_HOURS = 48
DEFER_HOURS = 3


@dataclass(frozen=True)
class FollowUpRun:
    owner: Actor
    campaign_id: int


def seed_follow_ups(db: Database, *, sent: int, deferred: int, now: datetime = NOW,
                    name: str = "Two-step SMS", tenant_id: int | None = None) -> FollowUpRun:
    """A running two-step campaign: `sent` leads got their first touch (sent at `now`) and wait
    FOLLOW_UP_HOURS for the follow-up; `deferred` leads wait DEFER_HOURS for their first touch."""
    if tenant_id is None:
        tenant_id = make_tenant(db)
        with db.session(system=True) as session, session.begin():
            session.execute(update(Tenant).where(Tenant.id == tenant_id)
                            .values(postal_address="1 Main St, Springfield"))
    owner = make_actor(db, tenant_id, username=f"owner-{tenant_id}-{name.split()[0].lower()}")
    insert_leads(db, tenant_id, sent + deferred)
    campaign = create_campaign(db, owner, name=name, channel="sms",
                               steps=[{"delay_hours": 0}, {"delay_hours": FOLLOW_UP_HOURS}])
    start_campaign(db, owner, campaign.id, now=now - timedelta(minutes=30))
    with db.session(system=True) as session, session.begin():
        rows = session.scalars(select(CampaignLead).where(CampaignLead.campaign_id == campaign.id)
                               .order_by(CampaignLead.id)).all()
        for row in rows[:sent]:
            row.step, row.status = 1, "pending"
            row.next_action_at = now + timedelta(hours=FOLLOW_UP_HOURS)
            session.add(Message(tenant_id=tenant_id, campaign_id=campaign.id, campaign_lead_id=row.id,
                                lead_id=row.lead_id, step=0, channel="sms", to_address="+12025550000",
                                body="hi", provider="outbox", status="sent", sent_at=now,
                                idempotency_key=f"k{row.id}-0"))
        for row in rows[sent:]:
            row.status, row.status_reason = "deferred", "outside the send window"
            row.next_action_at = now + timedelta(hours=DEFER_HOURS)
    return FollowUpRun(owner, campaign.id)


def test_first_touches_sent_and_deferred_are_counted_per_step(db: Database) -> None:
    run = seed_follow_ups(db, sent=7, deferred=11)
    progress = campaign_progress(db, run.owner, run.campaign_id, now=NOW)
    first, follow_up = progress.steps
    assert (first.name, first.sent, first.deferred, first.waiting) == ("first touch", 7, 11, 0)
    assert (follow_up.name, follow_up.sent, follow_up.waiting) == ("follow-up 1", 0, 7)
    assert follow_up.next_due_at == NOW + timedelta(hours=FOLLOW_UP_HOURS)
    assert progress.next_due_at == NOW + timedelta(hours=DEFER_HOURS)
    assert first.summary(NOW) == ("7 sent · 11 deferred (send window, contact cap, public holiday, "
                                  "send rate or budget) · next try in 3 h (Tue 15:00 UTC)")
    assert follow_up.summary(NOW) == ("0 sent · 7 waiting for their delay · "
                                      "next follow-up 1 due in 48 h (Thu 12:00 UTC)")


def test_sends_per_minute_show_a_burst_the_five_minute_average_hides(db: Database) -> None:
    run = seed_follow_ups(db, sent=6, deferred=0, now=NOW - timedelta(seconds=10))
    with db.session(system=True) as session, session.begin():
        first = session.scalars(select(Message).order_by(Message.id)).first()
        assert first is not None
        first.sent_at = NOW - timedelta(minutes=4, seconds=30)
    progress = campaign_progress(db, run.owner, run.campaign_id, now=NOW)
    assert len(progress.sends_per_minute) == 15
    assert progress.sends_per_minute[-1] == 5 and progress.sends_per_minute[-5] == 1
    assert (progress.sent_last_minute, progress.sent_last_5_minutes) == (5, 6)


def test_a_paused_run_has_no_eta(db: Database) -> None:
    run = seed_follow_ups(db, sent=0, deferred=3)
    with db.session(system=True) as session, session.begin():
        a_minute_ago = NOW - timedelta(minutes=1)
        session.execute(update(CampaignLead).values(status="pending", next_action_at=a_minute_ago,
                                                    updated_at=a_minute_ago))
        session.execute(update(CampaignLead).where(CampaignLead.id == 1).values(status="sent"))
    assert campaign_progress(db, run.owner, run.campaign_id, now=NOW).eta_seconds is not None
    pause_campaign(db, run.owner, run.campaign_id)
    assert campaign_progress(db, run.owner, run.campaign_id, now=NOW).eta_seconds is None


def test_an_all_failed_run_says_so_in_its_status(db: Database) -> None:
    run = seed_follow_ups(db, sent=0, deferred=3)
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).values(status="failed", error="no postal address"))
        session.execute(update(Campaign).values(status="completed"))
    progress = campaign_progress(db, run.owner, run.campaign_id, now=NOW)
    assert progress.status_text == "completed: 0 sent, 3 failed"


def test_after_cancel_the_reason_is_the_cancel_not_the_pause(db: Database) -> None:
    run = seed_follow_ups(db, sent=1, deferred=1)
    pause_campaign(db, run.owner, run.campaign_id,
                   reason="budget cap of $0.0050 reached: raise the cap and resume the campaign")
    cancelled = cancel_campaign(db, run.owner, run.campaign_id)
    assert cancelled.status_reason == f"cancelled by {run.owner.username}"
    progress = campaign_progress(db, run.owner, run.campaign_id, now=NOW)
    assert progress.status_text == "cancelled: 1 sent, 2 cancelled"
    assert "raise the cap" not in (progress.status_reason or "")


@pytest.mark.parametrize("minutes_ago", [0, 14])
def test_sends_older_than_the_series_are_left_out(db: Database, minutes_ago: int) -> None:
    run = seed_follow_ups(db, sent=2, deferred=0, now=NOW - timedelta(minutes=minutes_ago))
    with db.session(system=True) as session, session.begin():
        session.execute(update(Message).where(Message.id == 1).values(sent_at=NOW - timedelta(hours=1)))
    progress = campaign_progress(db, run.owner, run.campaign_id, now=NOW)
    assert sum(progress.sends_per_minute) == 1
