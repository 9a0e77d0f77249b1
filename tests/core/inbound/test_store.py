"""Storing inbound messages: once per provider id, matched to the lead and campaign they answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.db import Database
from core.inbound.store import (
    InboundRecorded,
    record_inbound,
    tenant_for_email_address,
    tenant_for_sms_number,
)
from core.models import InboundMessage, Lead, Message, Tenant
from tests.factories import enrol, make_campaign, make_tenant

NOW = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)


def _lead(db: Database, tenant_id: int, *, phone: str | None = None, email: str | None = None) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ann", phone=phone, email=email)
        session.add(lead)
        session.flush()
        return lead.id


def _outbound(db: Database, tenant_id: int, campaign_id: int, lead_id: int, *, at: datetime) -> int:
    enrolment = enrol(db, tenant_id, campaign_id, lead_id)
    with db.session(tenant_id=tenant_id) as session, session.begin():
        message = Message(campaign_id=campaign_id, campaign_lead_id=enrolment, lead_id=lead_id, step=0,
                          channel="sms", to_address="+14155550123", body="Hi", provider="twilio",
                          provider_message_id=f"SM{enrolment:032d}", status="sent",
                          idempotency_key=f"{enrolment}-0", created_at=at)
        session.add(message)
        session.flush()
        return message.id


def _sms(db: Database, tenant_id: int, sid: str = "SM" + "a" * 32, body: str = "Sounds good",
         sender: str = "+14155550123", **extra: Any) -> InboundRecorded:
    return record_inbound(db, tenant_id=tenant_id, channel="sms", from_address=sender,
                          to_address="+14155550100", body=body, provider="twilio",
                          provider_message_id=sid, received_at=NOW, **extra)


def test_a_retry_is_stored_once_and_changes_nothing(db: Database) -> None:
    tenant = make_tenant(db)
    first = _sms(db, tenant, body="Sounds good")
    again = _sms(db, tenant, body="something else")
    assert first.created is True and again.created is False
    assert again.id == first.id
    with db.session(tenant_id=tenant) as session:
        rows = session.scalars(select(InboundMessage)).all()
    assert [(row.body, row.channel, row.provider) for row in rows] == [("Sounds good", "sms", "twilio")]
    assert rows[0].received_at == NOW
    assert rows[0].classification_detail == {}


def test_the_same_provider_id_in_two_tenants_is_two_messages(db: Database) -> None:
    acme, other = make_tenant(db, "Acme"), make_tenant(db, "Other")
    assert _sms(db, acme).created and _sms(db, other).created
    with db.session(system=True) as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 2


@pytest.mark.parametrize("sender", ["+14155550123", "(415) 555-0123", "415.555.0123", "+1 415 555 0123"])
def test_the_lead_is_found_by_the_phone_as_the_import_normalises_it(db: Database, sender: str) -> None:
    tenant = make_tenant(db)
    lead = _lead(db, tenant, phone="+14155550123")
    assert _sms(db, tenant, sender=sender).lead_id == lead


def test_a_national_number_is_read_in_the_tenants_country(db: Database) -> None:
    tenant = make_tenant(db, "Brit", country="GB")
    lead = _lead(db, tenant, phone="+447911123456")
    assert _sms(db, tenant, sender="07911 123456").lead_id == lead


@pytest.mark.parametrize("sender", ["ann@example.com", "ANN@Example.com", "Ann Lee <Ann@example.com>"])
def test_the_lead_is_found_by_email(db: Database, sender: str) -> None:
    tenant = make_tenant(db)
    lead = _lead(db, tenant, email="ann@example.com")
    found = record_inbound(db, tenant_id=tenant, channel="email", from_address=sender,
                           to_address="sales@acme.example", subject="Re: hello", body="Yes please",
                           provider="imap", provider_message_id="abc@mail.example", received_at=NOW)
    assert found.lead_id == lead


def test_another_tenants_lead_is_never_matched(db: Database) -> None:
    acme, other = make_tenant(db, "Acme"), make_tenant(db, "Other")
    _lead(db, other, phone="+14155550123")
    assert _sms(db, acme).lead_id is None


def test_an_unknown_sender_is_stored_without_a_lead(db: Database) -> None:
    tenant = make_tenant(db)
    stored = _sms(db, tenant, sender="not a number")
    assert stored.created and stored.lead_id is None


def test_the_campaign_comes_from_the_answered_message(db: Database) -> None:
    tenant = make_tenant(db)
    lead = _lead(db, tenant, phone="+14155550123")
    spring, autumn = make_campaign(db, tenant, "Spring"), make_campaign(db, tenant, "Autumn")
    answered = _outbound(db, tenant, spring, lead, at=NOW - timedelta(days=3))
    _outbound(db, tenant, autumn, lead, at=NOW - timedelta(days=1))
    stored = _sms(db, tenant, in_reply_to_message_id=answered)
    with db.session(tenant_id=tenant) as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None
        assert (row.campaign_id, row.in_reply_to_message_id) == (spring, answered)


def test_without_an_answered_message_the_campaign_is_the_leads_latest(db: Database) -> None:
    tenant = make_tenant(db)
    lead = _lead(db, tenant, phone="+14155550123")
    spring, autumn = make_campaign(db, tenant, "Spring"), make_campaign(db, tenant, "Autumn")
    _outbound(db, tenant, spring, lead, at=NOW - timedelta(days=3))
    _outbound(db, tenant, autumn, lead, at=NOW - timedelta(days=1))
    stored = _sms(db, tenant)
    with db.session(tenant_id=tenant) as session:
        campaign = session.scalar(select(InboundMessage.campaign_id).where(InboundMessage.id == stored.id))
    assert campaign == autumn


def test_a_message_without_a_provider_id_is_refused(db: Database) -> None:
    tenant = make_tenant(db)
    with pytest.raises(ValueError, match="provider's message id"):
        _sms(db, tenant, sid=" ")


def _set_senders(db: Database, tenant_id: int, *, sms: str | None = None, email: str | None = None) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant_id)
                        .values(sms_sender_id=sms, sms_sender_key=sms, email_sender=email))


def test_the_tenant_is_found_by_its_sms_number(db: Database) -> None:
    acme, other = make_tenant(db, "Acme"), make_tenant(db, "Other")
    _set_senders(db, acme, sms="+14155550100")
    _set_senders(db, other, sms="+14155550199")
    assert tenant_for_sms_number(db, "+14155550100") == acme
    assert tenant_for_sms_number(db, "+14155550199") == other
    assert tenant_for_sms_number(db, "+14155550111") is None
    assert tenant_for_sms_number(db, "") is None


def test_the_tenant_is_found_by_its_email_sender_unless_two_share_it(db: Database) -> None:
    acme, other, third = make_tenant(db, "Acme"), make_tenant(db, "Other"), make_tenant(db, "Third")
    _set_senders(db, acme, email="Sales@Acme.example")
    assert tenant_for_email_address(db, "Acme Sales <sales@acme.example>") == acme
    assert tenant_for_email_address(db, "nobody@acme.example") is None
    _set_senders(db, other, email="shared@x.example")
    _set_senders(db, third, email="shared@x.example")
    assert tenant_for_email_address(db, "shared@x.example") is None
