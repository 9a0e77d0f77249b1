"""Twilio delivery receipts through the real service: in order, out of order, retried, permanent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core.channels.receipts import STATUS_RANK, TWILIO_STATUSES
from core.config import Settings
from core.db import Database
from core.models import Lead, Message, Suppression
from tests.api.conftest import ApiServer, post_signed, status_callback
from tests.factories import enrol, make_campaign, make_tenant

PATH = "/api/webhooks/twilio/status"
PHONE, ALTERNATE = "+14155550123", "+14155550124"
SID = "SM" + "c" * 32


@pytest.fixture
def base(settings: Settings, db: Database, api_server: ApiServer) -> str:
    return api_server(settings, db)


def _sent_message(db: Database, *, sid: str | None = SID, status: str = "sent") -> tuple[int, int, int]:
    """A tenant, its lead (with an alternate number) and one SMS sent to it: (tenant, lead, message)."""
    tenant = make_tenant(db)
    with db.session(tenant_id=tenant) as session, session.begin():
        lead = Lead(
            first_name="Ann",
            phone=PHONE,
            alternates=[{"channel": "sms", "value": ALTERNATE, "label": "mobile 2"}],
        )
        session.add(lead)
        session.flush()
        lead_id = lead.id
    campaign = make_campaign(db, tenant)
    enrolment = enrol(db, tenant, campaign, lead_id)
    with db.session(tenant_id=tenant) as session, session.begin():
        message = Message(
            campaign_id=campaign,
            campaign_lead_id=enrolment,
            lead_id=lead_id,
            step=0,
            channel="sms",
            to_address=PHONE,
            body="Hi Ann",
            provider="twilio",
            provider_message_id=sid,
            status=status,
            idempotency_key=f"{enrolment}-0",
            sent_at=datetime.now(UTC) if status == "sent" else None,
        )
        session.add(message)
        session.flush()
        return tenant, lead_id, message.id


def _message(db: Database, message_id: int) -> Message:
    with db.session(system=True) as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message


def post(base: str, status: str, *, error_code: str | None = None, query: str = "", sid: str = SID) -> int:
    return post_signed(
        base, PATH + query, status_callback(sid, status, to=PHONE, error_code=error_code)
    ).status_code


def _statuses(db: Database, base: str, message_id: int, sequence: list[str]) -> list[str]:
    seen = []
    for status in sequence:
        assert post(base, status) == 204
        seen.append(_message(db, message_id).status)
    return seen


def test_receipts_in_order_move_the_message_to_delivered(db: Database, base: str) -> None:
    _tenant, _lead, message_id = _sent_message(db)
    assert _statuses(db, base, message_id, ["queued", "sent", "delivered"]) == ["sent", "sent", "delivered"]
    message = _message(db, message_id)
    assert message.delivered_at is not None and message.error is None


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["delivered", "sent"], "delivered"),
        (["delivered", "queued", "sent", "delivered"], "delivered"),
        (["undelivered", "sent", "delivered"], "undelivered"),
        (["failed", "delivered"], "failed"),
        (["sent", "sent", "sent"], "sent"),
    ],
)
def test_receipts_out_of_order_or_repeated_never_lower_the_status(
    db: Database, base: str, sequence: list[str], final: str
) -> None:
    _tenant, _lead, message_id = _sent_message(db)
    assert _statuses(db, base, message_id, sequence)[-1] == final


def test_a_late_receipt_keeps_the_first_delivery_time(db: Database, base: str) -> None:
    _tenant, _lead, message_id = _sent_message(db)
    post(base, "delivered")
    first = _message(db, message_id).delivered_at
    post(base, "delivered")
    assert _message(db, message_id).delivered_at == first


def test_a_receipt_that_beats_the_sid_finds_its_message_by_the_ledger_key(db: Database, base: str) -> None:
    _tenant, _lead, message_id = _sent_message(db, sid=None, status="sending")
    key = _message(db, message_id).idempotency_key
    assert post(base, "sent", query=f"?key={key}") == 204
    message = _message(db, message_id)
    assert (message.status, message.provider_message_id) == ("sent", SID)
    assert message.sent_at is not None


def test_a_key_with_another_sid_on_its_message_is_not_trusted(db: Database, base: str) -> None:
    _tenant, _lead, message_id = _sent_message(db)
    key = _message(db, message_id).idempotency_key
    assert post(base, "delivered", query=f"?key={key}", sid="SM" + "d" * 32) == 204
    assert _message(db, message_id).status == "sent"


def test_a_receipt_for_an_unknown_message_changes_nothing(db: Database, base: str) -> None:
    _tenant, _lead, message_id = _sent_message(db)
    assert post(base, "delivered", sid="SM" + "0" * 32) == 204
    assert _message(db, message_id).status == "sent"


def test_an_unsigned_receipt_gets_403(db: Database, base: str) -> None:
    _tenant, _lead, message_id = _sent_message(db)
    response = post_signed(base, PATH, status_callback(SID, "delivered", to=PHONE), signature="forged")
    assert response.status_code == 403
    assert _message(db, message_id).status == "sent"


def _suppressions(db: Database, tenant: int) -> list[tuple[str, str]]:
    with db.session(tenant_id=tenant) as session:
        return [(s.address, s.reason) for s in session.scalars(select(Suppression))]


def _lead(db: Database, tenant: int, lead_id: int) -> Lead:
    with db.session(tenant_id=tenant) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        return lead


@pytest.mark.parametrize("code", ["30003", "30004", "30005", "30006"])
def test_a_permanent_error_marks_the_number_unusable_and_falls_back(
    db: Database, base: str, code: str
) -> None:
    tenant, lead_id, message_id = _sent_message(db)
    assert post(base, "undelivered", error_code=code) == 204
    message = _message(db, message_id)
    assert message.status == "undelivered" and message.error is not None and code in message.error
    assert _suppressions(db, tenant) == [(PHONE, "bounce")]
    lead = _lead(db, tenant, lead_id)
    assert lead.phone == ALTERNATE and lead.opted_out_at is None
    assert any(a["value"] == PHONE and a.get("bounced") for a in lead.alternates)


@pytest.mark.parametrize("code", ["30007", "30008", None])
def test_other_failures_leave_the_number_usable(db: Database, base: str, code: str | None) -> None:
    tenant, lead_id, message_id = _sent_message(db)
    assert post(base, "failed", error_code=code) == 204
    assert _message(db, message_id).status == "failed"
    assert _suppressions(db, tenant) == [] and _lead(db, tenant, lead_id).phone == PHONE


def test_an_unsubscribed_recipient_is_a_stop(db: Database, base: str) -> None:
    tenant, lead_id, _message_id = _sent_message(db)
    assert post(base, "failed", error_code="21610") == 204
    assert _suppressions(db, tenant) == [(PHONE, "stop")]
    lead = _lead(db, tenant, lead_id)
    assert lead.opted_out_at is not None and lead.phone == PHONE


def test_every_documented_twilio_status_has_a_rank() -> None:
    assert set(TWILIO_STATUSES.values()) <= set(STATUS_RANK)


def test_the_pipelines_write_after_the_send_never_lowers_a_receipts_status(db: Database) -> None:
    from core.db import execute_core
    from core.pipeline.store import _cached_update, _update_params

    tenant, _lead_id, message_id = _sent_message(db, sid=None, status="delivered")
    values: dict[str, Any] = {"status": "sent", "provider_message_id": SID, "error": None}
    with db.session(tenant_id=tenant) as session, session.begin():
        execute_core(
            session,
            _cached_update(Message, tuple(sorted(values))),
            _update_params(values, row_id=message_id),
        )
    message = _message(db, message_id)
    assert (message.status, message.provider_message_id) == ("delivered", SID)
