"""Contact caps and public holidays at send time: deferred (never failed) with the reason in words."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.compliance import frequency
from core.config import Settings
from core.models import Campaign, CampaignLead, LLMCall, Message, OutboxMessage
from core.pipeline import nodes
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from tests.core.pipeline.conftest import NOW, WORKER, Seed
from tests.core.pipeline.test_service import ScriptedSender  # a provider outside the database (Twilio)

H = timedelta(hours=1)


def run(seed: Seed, runtime: PipelineRuntime, campaign_lead_id: int, owner: str = WORKER) -> str:
    return process_campaign_lead(seed.db, runtime, campaign_lead_id, lease_owner=owner)


def count(seed: Seed, column: Any) -> int:
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        return session.scalar(select(func.count(column))) or 0


def enrol_elsewhere(seed: Seed, lead_id: int, name: str, channel: str, **fields: Any) -> int:
    """The lead enrolled in another running campaign of the tenant; the enrolment's id."""
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        campaign = Campaign(
            name=name, channel=channel, status="running", system_prompt="Be brief.", model="gpt-4o-mini"
        )
        session.add(campaign)
        session.flush()
        enrolment = CampaignLead(campaign_id=campaign.id, lead_id=lead_id, **fields)
        session.add(enrolment)
        session.flush()
        return enrolment.id


def sent_elsewhere(seed: Seed, lead_id: int, at: datetime, *, status: str = "sent") -> None:
    """A message of another campaign (by email) written to the ledger at `at`."""
    enrolment_id = enrol_elsewhere(seed, lead_id, f"Other {at:%H%M%S} {status}", "email", status="sent")
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        enrolment = session.get(CampaignLead, enrolment_id)
        assert enrolment is not None
        session.add(
            Message(
                campaign_id=enrolment.campaign_id,
                campaign_lead_id=enrolment_id,
                lead_id=lead_id,
                step=0,
                channel="email",
                to_address="ada@analytical.example",
                body="Hello",
                provider="outbox",
                status=status,
                idempotency_key=f"other-{enrolment_id}",
                created_at=at,
            )
        )


# -- contact caps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_day", "per_week", "earlier_hours_ago", "expected"),
    [
        (1, None, [], "sent"),
        (1, None, [2], "deferred"),  # exactly at the daily cap
        (2, None, [2], "sent"),  # one below it
        (1, None, [25], "sent"),  # the earlier message left the rolling day
        (None, 3, [100, 50, 2], "deferred"),  # exactly at the weekly cap
        (None, 3, [170, 50, 2], "sent"),  # the oldest left the rolling week
        (None, None, [3, 2, 1], "sent"),  # no caps
    ],
)
def test_the_cap_counts_every_campaign_of_the_lead(
    seed: Seed,
    runtime: PipelineRuntime,
    per_day: int | None,
    per_week: int | None,
    earlier_hours_ago: list[int],
    expected: str,
) -> None:
    seed.tenant(contact_cap_per_day=per_day, contact_cap_per_week=per_week)
    lead = seed.lead()
    for hours in earlier_hours_ago:
        sent_elsewhere(seed, lead, NOW - hours * H)
    cl = seed.enrol(lead)
    assert run(seed, runtime, cl) == expected
    assert len(seed.messages(cl)) == (1 if expected == "sent" else 0)


def test_a_capped_lead_is_deferred_before_any_spend_with_the_reason(
    seed: Seed, runtime: PipelineRuntime
) -> None:
    seed.tenant(contact_cap_per_day=1, contact_cap_per_week=3)
    lead = seed.lead()
    sent_elsewhere(seed, lead, NOW - 2 * H)
    cl = seed.enrol(lead)
    assert run(seed, runtime, cl) == "deferred"
    row = seed.enrolment(cl)
    # The other message went at 13:00 UTC: the rolling day lets one more at 13:00 UTC tomorrow,
    # shown as 08:00 in New York (the tenant's clock, from its country US).
    assert row.next_action_at == NOW + 22 * H
    assert row.status_reason == (
        "contact cap reached (1 message per lead a day, all campaigns together); "
        "due again at 2026-11-19 08:00 America/New_York"
    )
    assert row.lease_owner is None and count(seed, LLMCall.id) == 0
    assert [e.message for e in seed.events(cl) if e.node == "validate"] == [row.status_reason]


def test_failed_messages_do_not_count_towards_the_cap(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.tenant(contact_cap_per_day=1)
    lead = seed.lead()
    sent_elsewhere(seed, lead, NOW - 2 * H, status="failed")
    cl = seed.enrol(lead)
    assert run(seed, runtime, cl) == "sent"


def test_the_cap_lifting_in_quiet_hours_waits_for_the_window(seed: Seed, runtime: PipelineRuntime) -> None:
    seed.tenant(contact_cap_per_day=1)
    lead = seed.lead()
    sent_elsewhere(seed, lead, NOW - 12 * H)  # the cap lifts at 03:00 UTC, 22:00 in New York
    cl = seed.enrol(lead)
    assert run(seed, runtime, cl) == "deferred"
    assert seed.enrolment(cl).next_action_at == datetime(2026, 11, 19, 13, 0, tzinfo=UTC)  # 08:00 NY


@pytest.mark.parametrize("provider", ["outbox", "twilio"])
def test_the_send_counts_again_in_the_ledger_transaction(
    seed: Seed, runtime: PipelineRuntime, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    # Another worker's message lands after this run's validate: only the send's own count sees it.
    seed.tenant(contact_cap_per_day=1)
    sender = ScriptedSender()
    if provider == "twilio":
        runtime.senders = {"sms": sender}
    lead = seed.lead()
    sent_elsewhere(seed, lead, NOW - 2 * H)
    monkeypatch.setattr(nodes, "cap_deferral", lambda ctx: None)
    cl = seed.enrol(lead)
    assert run(seed, runtime, cl) == "deferred"
    row = seed.enrolment(cl)
    assert row.next_action_at == NOW + 22 * H
    assert (row.status_reason or "").startswith("contact cap reached (1 message per lead a day")
    assert seed.messages(cl) == [] and sender.sent == [] and count(seed, OutboxMessage.id) == 0
    assert [e.node for e in seed.events(cl) if e.level == "info" and "cap" in e.message] == ["send"]


@pytest.mark.parametrize("provider", ["outbox", "twilio"])
def test_two_workers_sending_to_one_lead_at_once_keep_the_cap(
    seed: Seed, settings: Settings, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """Two campaigns' runs for one lead pass validate together and reach the ledger together."""
    if seed.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: the race needs PostgreSQL")
    seed.tenant(contact_cap_per_day=1)
    lead = seed.lead()
    first = seed.enrol(lead)
    second = enrol_elsewhere(
        seed,
        lead,
        "Second",
        "sms",
        status="in_progress",
        lease_owner="worker-2",
        lease_expires_at=NOW + 2 * H,
        attempts=1,
    )
    # Both runs wait for each other just before the lock and the count: without the lock both
    # would count no message and both would send.
    both_at_the_ledger = threading.Barrier(2, timeout=60)
    lock_lead = frequency.lock_lead

    def meet_then_lock(session: Any, lead_id: int, *, dialect: str) -> None:
        both_at_the_ledger.wait()
        lock_lead(session, lead_id, dialect=dialect)

    monkeypatch.setattr("core.pipeline.ledger.lock_lead", meet_then_lock)
    runtime = PipelineRuntime.from_settings(settings, seed.db, now=lambda: NOW)
    sender = ScriptedSender()
    if provider == "twilio":
        runtime.senders = {"sms": sender}
    outcomes: dict[int, str] = {}

    def work(campaign_lead_id: int, owner: str) -> None:
        outcomes[campaign_lead_id] = run(seed, runtime, campaign_lead_id, owner)

    threads = [threading.Thread(target=work, args=args) for args in ((first, WORKER), (second, "worker-2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes.values()) == ["deferred", "sent"]
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        to_the_lead = session.scalar(select(func.count(Message.id)).where(Message.lead_id == lead))
    assert to_the_lead == 1
    assert count(seed, OutboxMessage.id) + len(sender.sent) == 1


# -- public holidays ---------------------------------------------------------------------------

GERMAN_UNITY_DAY = datetime(2026, 10, 3, 14, 0, tzinfo=UTC)  # 16:00 in Berlin, 10:00 in New York


@pytest.mark.parametrize(
    ("holiday_country", "lead_country", "time_zone", "expected"),
    [
        (None, "DE", "Europe/Berlin", "deferred"),  # the recipient's calendar: a holiday in DE
        (None, "US", "America/New_York", "sent"),  # ... and none in the US
        ("US", "DE", "Europe/Berlin", "sent"),  # the tenant's chosen calendar instead
        ("DE", "US", "America/New_York", "deferred"),
    ],
)
def test_public_holidays_defer_like_quiet_hours(
    seed: Seed,
    settings: Settings,
    holiday_country: str | None,
    lead_country: str,
    time_zone: str,
    expected: str,
) -> None:
    seed.tenant(skip_public_holidays=True, holiday_country=holiday_country)
    runtime = PipelineRuntime.from_settings(settings, seed.db, now=lambda: GERMAN_UNITY_DAY)
    phone = "+493012345678" if lead_country == "DE" else "+12125550101"
    cl = seed.enrol(seed.lead(country=lead_country, time_zone=time_zone, phone=phone))
    assert run(seed, runtime, cl) == expected


def test_a_holiday_deferral_says_which_holiday_and_when_in_the_tenants_clock(
    seed: Seed, settings: Settings
) -> None:
    seed.tenant(skip_public_holidays=True, time_zone="Europe/Berlin")
    runtime = PipelineRuntime.from_settings(settings, seed.db, now=lambda: GERMAN_UNITY_DAY)
    cl = seed.enrol(seed.lead(country="DE", time_zone="Europe/Berlin", phone="+493012345678"))
    assert run(seed, runtime, cl) == "deferred"
    row = seed.enrolment(cl)
    assert row.next_action_at == datetime(2026, 10, 4, 6, 0, tzinfo=UTC)  # Sunday 08:00 in Berlin
    assert row.status_reason == (
        "public holiday in DE (German Unity Day); due again at 2026-10-04 08:00 Europe/Berlin"
    )
    assert count(seed, LLMCall.id) == 0


def test_holidays_are_ignored_unless_the_tenant_chose_to_skip_them(seed: Seed, settings: Settings) -> None:
    runtime = PipelineRuntime.from_settings(settings, seed.db, now=lambda: GERMAN_UNITY_DAY)
    cl = seed.enrol(seed.lead(country="DE", time_zone="Europe/Berlin", phone="+493012345678"))
    assert run(seed, runtime, cl) == "sent"
