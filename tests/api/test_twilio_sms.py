"""Incoming SMS through the real service: signatures, tenants, retries and every keyword."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from core.config import Settings
from core.db import Database
from core.models import AuditLog, CampaignLead, InboundMessage, Lead, Suppression, Tenant
from tests.api.conftest import (
    PUBLIC_URL,
    ApiServer,
    incoming_sms,
    post_signed,
    twilio_signature,
)
from tests.conftest import make_settings
from tests.factories import enrol, make_campaign, make_tenant

PATH = "/api/webhooks/twilio/sms"
ACME_NUMBER, OTHER_NUMBER = "+14155550100", "+14155550199"
LEAD_PHONE = "+14155550123"
_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def _tenant(db: Database, name: str, number: str, **values: Any) -> int:
    tenant_id = make_tenant(db, name)
    with db.session(system=True) as session, session.begin():
        session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(sms_sender_id=number, sms_sender_key=number, **values)
        )
    return tenant_id


def _lead(db: Database, tenant_id: int, phone: str = LEAD_PHONE, **values: Any) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ann", phone=phone, **values)
        session.add(lead)
        session.flush()
        return lead.id


@pytest.fixture
def acme(db: Database) -> int:
    return _tenant(
        db,
        "Acme",
        ACME_NUMBER,
        email_sender="sales@acme.example",
        postal_address="1 Market St, San Francisco",
    )


@pytest.fixture
def base(settings: Settings, db: Database, api_server: ApiServer) -> str:
    return api_server(settings, db)


def text(
    base: str, body: str, *, sid: str | None = None, sender: str = LEAD_PHONE, to: str = ACME_NUMBER
) -> httpx.Response:
    return post_signed(base, PATH, incoming_sms(sid or new_sid(), body, sender=sender, to=to))


def _inbound(db: Database) -> list[InboundMessage]:
    with db.session(system=True) as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def _suppressions(db: Database, tenant_id: int) -> list[tuple[str, str, str]]:
    with db.session(tenant_id=tenant_id) as session:
        return [(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))]


def _opted_out(db: Database, tenant_id: int, lead_id: int) -> datetime | None:
    with db.session(tenant_id=tenant_id) as session:
        return session.scalar(select(Lead.opted_out_at).where(Lead.id == lead_id))


# --- signatures ---------------------------------------------------------------------------------


def test_a_signed_message_is_stored_in_the_leads_conversation(db: Database, acme: int, base: str) -> None:
    lead = _lead(db, acme)
    response = text(base, "Sounds interesting, tell me more", sid="SM" + "f" * 32)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    [row] = _inbound(db)
    assert (row.tenant_id, row.lead_id, row.channel, row.provider, row.provider_message_id) == (
        acme,
        lead,
        "sms",
        "twilio",
        "SM" + "f" * 32,
    )
    assert (row.from_address, row.to_address, row.body) == (
        LEAD_PHONE,
        ACME_NUMBER,
        "Sounds interesting, tell me more",
    )
    # Left for the reply agent.
    assert row.processed_at is None and row.classification is None


@pytest.mark.parametrize("case", ["invalid", "other token", "other url", "tampered", "missing"])
def test_an_unverified_request_gets_403_and_changes_nothing(
    db: Database, acme: int, base: str, case: str
) -> None:
    lead = _lead(db, acme)
    params = incoming_sms(new_sid(), "STOP", sender=LEAD_PHONE, to=ACME_NUMBER)
    signature = {
        "invalid": "bm90IGEgc2lnbmF0dXJl",
        "other token": twilio_signature(PATH, params, token="another-account-token"),
        "other url": twilio_signature("/api/webhooks/twilio/status", params),
        "tampered": twilio_signature(PATH, {**params, "Body": "hello"}),
        "missing": "",
    }[case]
    if case == "missing":
        response = httpx.post(base + PATH, data=params)
    else:
        response = post_signed(base, PATH, params, signature=signature)
    assert response.status_code == 403
    assert _inbound(db) == []
    assert _suppressions(db, acme) == [] and _opted_out(db, acme, lead) is None


@pytest.mark.parametrize("missing", ["twilio_auth_token", "public_url"])
def test_without_the_token_or_public_url_configured_nothing_verifies(
    database_url: str, db: Database, acme: int, api_server: ApiServer, missing: str
) -> None:
    from tests.api.conftest import TWILIO_TOKEN

    values: dict[str, Any] = {"twilio_auth_token": TWILIO_TOKEN, "public_url": PUBLIC_URL, missing: None}
    base = api_server(make_settings(database_url, **values), db)
    response = text(base, "STOP")
    assert response.status_code == 403
    assert _inbound(db) == []


def test_a_number_no_tenant_sends_from_gets_404_and_nothing_is_stored(
    db: Database, acme: int, base: str
) -> None:
    response = text(base, "STOP", to="+14155550111")
    assert response.status_code == 404
    assert _inbound(db) == [] and _suppressions(db, acme) == []


def test_the_tenant_comes_from_the_to_number_never_another_tenants_lead(
    db: Database, acme: int, base: str
) -> None:
    other = _tenant(db, "Other", OTHER_NUMBER)
    acme_lead, other_lead = _lead(db, acme), _lead(db, other)
    assert text(base, "STOP", to=OTHER_NUMBER).status_code == 200
    [row] = _inbound(db)
    assert (row.tenant_id, row.lead_id) == (other, other_lead)
    assert _opted_out(db, other, other_lead) is not None
    assert _opted_out(db, acme, acme_lead) is None and _suppressions(db, acme) == []


def test_a_retry_of_the_same_message_sid_is_stored_once_and_answered_alike(
    db: Database, acme: int, base: str
) -> None:
    _lead(db, acme)
    first, again = text(base, "STOP", sid="SM" + "e" * 32), text(base, "STOP", sid="SM" + "e" * 32)
    assert first.status_code == again.status_code == 200
    assert first.text == again.text and "<Message>" in first.text
    assert len(_inbound(db)) == 1
    with db.session(tenant_id=acme) as session:
        replies = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "reply"))
    assert replies == 1


# --- keywords -----------------------------------------------------------------------------------

OPT_OUT_TEXTS = [
    "STOP",
    "stop",
    "Stop.",
    "STOPALL",
    "Stop all",
    "UNSUBSCRIBE",
    "Unsubscribe!",
    "cancel",
    "END",
    "quit",
    " Quit! ",
    "REVOKE",
    "OPTOUT",
    "opt out",
    "Opt-Out",
    "OPT OUT.",
    "ＳＴＯＰ",
]


@pytest.mark.parametrize("body", OPT_OUT_TEXTS)
def test_every_opt_out_keyword_opts_out_suppresses_and_confirms_once(
    db: Database, acme: int, base: str, body: str
) -> None:
    lead = _lead(db, acme)
    campaign = make_campaign(db, acme)
    waiting = enrol(db, acme, campaign, lead, status="pending")
    response = text(base, body, sender="(415) 555-0123")
    assert response.status_code == 200
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme: you are unsubscribed and will '
        "get no more messages from us. Reply START to resubscribe.</Message></Response>"
    )
    assert _opted_out(db, acme, lead) is not None
    assert _suppressions(db, acme) == [("sms", LEAD_PHONE, "stop")]
    with db.session(tenant_id=acme) as session:
        enrolment = session.get(CampaignLead, waiting)
        assert enrolment is not None and (enrolment.status, enrolment.status_reason) == (
            "skipped",
            "opted out",
        )
    [row] = _inbound(db)
    assert (
        row.classification == "unsubscribe" and row.processed_at is not None and row.handled_at is not None
    )


def test_a_stop_from_a_number_no_lead_has_still_suppresses_it(db: Database, acme: int, base: str) -> None:
    assert "<Message>" in text(base, "STOP", sender="+14155550777").text
    assert _suppressions(db, acme) == [("sms", "+14155550777", "stop")]


@pytest.mark.parametrize("body", ["please stop texting me", "don't stop", "Stop it now please", "ok"])
def test_other_texts_are_left_for_the_reply_agent_unanswered(
    db: Database, acme: int, base: str, body: str
) -> None:
    lead = _lead(db, acme)
    response = text(base, body)
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert _opted_out(db, acme, lead) is None and _suppressions(db, acme) == []
    [row] = _inbound(db)
    assert row.body == body and row.processed_at is None


@pytest.mark.parametrize("word", ["START", "unstop", "Yes!"])
def test_an_opt_in_keyword_takes_the_stop_back(db: Database, acme: int, base: str, word: str) -> None:
    lead = _lead(db, acme)
    text(base, "STOP")
    response = text(base, word)
    assert (
        "<Message>Acme: you are subscribed again. Reply STOP to unsubscribe, HELP for help.</Message>"
        in (response.text)
    )
    assert _opted_out(db, acme, lead) is None and _suppressions(db, acme) == []
    with db.session(tenant_id=acme) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "suppressions.sms_opt_in")).one()
    assert audit.details["address"] == LEAD_PHONE and audit.details["leads_opted_in"] == [lead]


def test_yes_from_a_number_that_is_not_opted_out_is_an_ordinary_reply(
    db: Database, acme: int, base: str
) -> None:
    _lead(db, acme)
    response = text(base, "YES")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    [row] = _inbound(db)
    assert row.processed_at is None and row.classification_detail == {}


def test_start_removes_only_the_keyword_stop_not_an_unsubscribe_or_a_bounce(
    db: Database, acme: int, base: str
) -> None:
    lead = _lead(db, acme, email="ann@example.com")
    text(base, "STOP")
    with db.session(tenant_id=acme) as session, session.begin():
        session.add(
            Suppression(
                tenant_id=acme,
                channel="email",
                address="ann@example.com",
                reason="unsubscribe",
                created_at=datetime.now(UTC),
            )
        )
    response = text(base, "START")
    assert "cannot be resubscribed by text" in response.text
    assert _suppressions(db, acme) == [("email", "ann@example.com", "unsubscribe")]
    assert _opted_out(db, acme, lead) is not None


@pytest.mark.parametrize("word", ["HELP", "info", "Help?"])
def test_help_answers_with_the_tenants_name_and_contact(
    db: Database, acme: int, base: str, word: str
) -> None:
    response = text(base, word)
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme. Contact: sales@acme.example; '
        "1 Market St, San Francisco. Reply STOP to unsubscribe, START to resubscribe.</Message></Response>"
    )
    assert _suppressions(db, acme) == []


def test_an_answer_is_escaped_as_xml(db: Database, base: str) -> None:
    _tenant(db, "Smith & <Sons>", ACME_NUMBER)
    assert "<Message>Smith &amp; &lt;Sons&gt;. Reply STOP" in text(base, "HELP").text
