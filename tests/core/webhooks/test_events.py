"""Events: written with their cause, once per cause, only for the endpoints that want them, and not
at all where no endpoint exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core.campaign_runs import start_campaign
from core.campaign_ticks import complete_finished_campaigns
from core.campaigns import create_campaign
from core.channels.receipts import apply_twilio_receipt
from core.db import Database
from core.gate import BudgetExceeded, DatabaseGate
from core.leads.queries import opt_out_leads
from core.models import Campaign, CampaignLead, Message, Role, Tenant, WebhookDelivery
from core.permissions import Actor
from core.replies import record_reply
from core.webhooks.endpoints import create_endpoint, update_endpoint
from core.webhooks.events import SUBSCRIBABLE, emit
from tests.core.inbound.conftest import NOW, seed_replies
from tests.factories import insert_leads, make_actor, make_tenant, seed_run, zone_at_midday

HOOK = "https://hooks.example.com/leadflow"  # never called: these tests only look at the outbox


def _deliveries(db: Database, tenant_id: int, event_type: str | None = None) -> list[WebhookDelivery]:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if event_type is not None:
            query = query.where(WebhookDelivery.event_type == event_type)
        return list(session.scalars(query))


def _hook(db: Database, actor: Actor, *events: str, url: str = HOOK) -> int:
    return create_endpoint(db, actor, url=url, event_types=list(events or SUBSCRIBABLE)).endpoint.id


def _tenant_with_leads(db: Database, leads: int = 2) -> Actor:
    tenant_id = make_tenant(db)
    with db.session(system=True) as session, session.begin():
        session.execute(
            update(Tenant).where(Tenant.id == tenant_id).values(postal_address="1 Main St, Springfield")
        )
    insert_leads(db, tenant_id, leads, time_zone=zone_at_midday())
    return make_actor(db, tenant_id, Role.admin)


def test_without_an_endpoint_nothing_is_written(db: Database) -> None:
    admin = _tenant_with_leads(db)
    run = seed_run(db, tenant_id=admin.tenant_id, leads=2)
    assert set(run.outcomes.values()) == {"sent"}
    complete_finished_campaigns(db)
    with db.session(system=True, read_only=True) as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_a_run_emits_campaign_started_each_message_sent_and_campaign_completed_once(db: Database) -> None:
    admin = _tenant_with_leads(db)
    endpoint_id = _hook(db, admin)
    _hook(db, admin, "reply.received")  # wants none of these
    run = seed_run(db, tenant_id=admin.tenant_id, leads=2)
    assert complete_finished_campaigns(db) == [run.campaign_id]
    assert complete_finished_campaigns(db) == []

    types = [d.event_type for d in _deliveries(db, admin.tenant_id)]
    assert types == ["campaign.started", "message.sent", "message.sent", "campaign.completed"]
    started, *sent, completed = _deliveries(db, admin.tenant_id)
    assert {d.endpoint_id for d in _deliveries(db, admin.tenant_id)} == {endpoint_id}
    assert started.payload["data"]["campaign"] == {"id": run.campaign_id, "name": "Autumn SMS"}
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        messages = session.execute(select(Message.id, Message.lead_id).order_by(Message.id)).all()
    assert [(d.payload["data"]["message_id"], d.payload["data"]["lead_id"]) for d in sent] == [
        tuple(m) for m in messages
    ]
    first = sent[0].payload
    assert first["type"] == "message.sent" and first["timestamp"].endswith("Z")
    assert (first["data"]["channel"], first["data"]["status"], first["data"]["step"]) == ("sms", "sent", 1)
    assert completed.payload["data"]["enrolments"] == {"sent": 2}
    assert len({d.event_id for d in _deliveries(db, admin.tenant_id)}) == 4


def test_delivery_receipts_emit_delivered_and_failed_once_each(db: Database) -> None:
    admin = _tenant_with_leads(db)
    run = seed_run(db, tenant_id=admin.tenant_id, leads=2)
    _hook(db, admin, "message.delivered", "message.failed")
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        rows = session.execute(select(Message.id, Message.idempotency_key).order_by(Message.id)).all()
        session.execute(update(Message).where(Message.id == rows[0].id).values(provider_message_id="SM1"))
        session.execute(update(Message).where(Message.id == rows[1].id).values(provider_message_id="SM2"))
    for _ in range(2):  # Twilio retries its callbacks
        apply_twilio_receipt(db, message_sid="SM1", twilio_status="delivered", error_code=None)
        apply_twilio_receipt(db, message_sid="SM2", twilio_status="undelivered", error_code=30003)
    delivered, failed = _deliveries(db, admin.tenant_id)
    assert (delivered.event_type, delivered.payload["data"]["message_id"]) == (
        "message.delivered",
        rows[0].id,
    )
    assert delivered.payload["data"]["delivered_at"] is not None
    assert (failed.event_type, failed.payload["data"]["status"]) == ("message.failed", "undelivered")
    assert "30003" in failed.payload["data"]["error"]
    assert run.campaign_id == delivered.payload["data"]["campaign"]["id"]


def test_an_opt_out_emits_once_whatever_path_repeats_it(db: Database) -> None:
    admin = _tenant_with_leads(db, leads=3)
    _hook(db, admin, "lead.opted_out")
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        from core.models import Lead

        leads = session.execute(select(Lead.id, Lead.phone).order_by(Lead.id)).all()
    record_reply(db, admin, phone=leads[0].phone, stop=True)
    record_reply(db, admin, phone=leads[0].phone, stop=True)
    opt_out_leads(db, admin, [leads[0].id, leads[1].id])
    opted = _deliveries(db, admin.tenant_id, "lead.opted_out")
    assert [(d.payload["data"]["lead_id"], d.payload["data"]["reason"]) for d in opted] == [
        (leads[0].id, "stop"),
        (leads[1].id, "manual"),
    ]
    assert "phone" not in opted[0].payload["data"] and leads[0].phone not in str(opted[0].payload)


def test_a_classified_reply_emits_reply_received_with_its_class(db: Database) -> None:
    replies = seed_replies(db)
    admin = make_actor(db, replies.tenant_id, Role.admin)
    _hook(db, admin, "reply.received", "lead.opted_out")
    inbound = replies.receive("Please stop texting me")
    replies.run()
    replies.run()  # nothing left to classify: nothing more is emitted
    received, opted = (
        _deliveries(db, replies.tenant_id, kind) for kind in ("reply.received", "lead.opted_out")
    )
    assert len(received) == 1 and len(opted) == 1
    data = received[0].payload["data"]
    assert (data["inbound_message_id"], data["classification"], data["lead_id"]) == (
        inbound,
        "unsubscribe",
        replies.lead_id,
    )
    assert data["campaign"]["id"] == replies.campaign_id
    assert received[0].payload["timestamp"] == NOW.isoformat().replace("+00:00", "Z")


def test_a_budget_cap_pause_emits_budget_reached_once(db: Database) -> None:
    admin = _tenant_with_leads(db, leads=1)
    _hook(db, admin, "budget.reached")
    campaign = create_campaign(db, admin, name="Capped", channel="sms", budget_cap_microusd=1_000)
    start_campaign(db, admin, campaign.id)
    gate = DatabaseGate(db, db.settings)

    def reserve(estimate: int) -> Any:
        return gate.reserve_model_call(
            tenant_id=admin.tenant_id,
            campaign_id=campaign.id,
            model="m",
            estimated_tokens=10,
            estimated_cost_microusd=estimate,
        )

    reserve(600)
    for _ in range(2):  # the second refusal finds the campaign paused already
        with pytest.raises(BudgetExceeded):
            reserve(500)
    [reached] = _deliveries(db, admin.tenant_id, "budget.reached")
    data = reached.payload["data"]
    assert data["campaign"] == {"id": campaign.id, "name": "Capped"}
    assert (data["budget"], data["limit"], data["status"]) == (
        "campaign_cap",
        {"amount": "0.001000", "currency": "USD"},
        "paused",
    )


def test_only_enabled_endpoints_subscribed_to_the_type_get_it(db: Database) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    other = make_actor(db, make_tenant(db, "Globex"), Role.admin)
    wants = _hook(db, admin, "message.sent")
    off = _hook(db, admin, "message.sent")
    _hook(db, admin, "message.failed")
    _hook(db, other, "message.sent")
    update_endpoint(db, admin, off, enabled=False)
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        assert emit(session, admin.tenant_id, "message.sent", {"message_id": 7}) == 1
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        # The data of an event no endpoint wants is never even computed.
        assert emit(session, admin.tenant_id, "campaign.started", lambda: pytest.fail("computed")) == 0
    [only] = _deliveries(db, admin.tenant_id)
    assert (only.endpoint_id, only.payload["data"]) == (wants, {"message_id": 7})
    assert _deliveries(db, other.tenant_id) == []


def test_an_emission_rolls_back_with_its_cause(db: Database) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    _hook(db, admin, "message.sent")
    with pytest.raises(RuntimeError), db.session(tenant_id=admin.tenant_id) as session, session.begin():
        emit(session, admin.tenant_id, "message.sent", {"message_id": 7})
        raise RuntimeError("the cause failed")
    assert _deliveries(db, admin.tenant_id) == []


def test_campaign_completed_is_not_emitted_for_a_campaign_still_working(db: Database) -> None:
    admin = _tenant_with_leads(db, leads=2)
    _hook(db, admin, "campaign.completed")
    run = seed_run(db, tenant_id=admin.tenant_id, leads=2, process=1)
    assert complete_finished_campaigns(db, now=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert _deliveries(db, admin.tenant_id) == []
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        assert session.scalar(select(Campaign.status).where(Campaign.id == run.campaign_id)) == "running"
        assert (
            session.scalar(select(CampaignLead.status).where(CampaignLead.id == run.campaign_lead_ids[1]))
            == "pending"
        )
