"""A reply recorded by hand finds its lead however the number or address is written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import Database
from core.errors import NotFound, ValidationError
from core.models import Lead, Role, Suppression
from core.replies import record_reply
from tests.factories import make_actor, make_tenant


def _lead(db: Database, tenant_id: int, *, phone: str | None = None, email: str | None = None) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ana", phone=phone, email=email)
        session.add(lead)
        session.flush()
        return lead.id


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        # As the import stores them (E.164, lower-case), from what a person copies.
        ({"phone": "+442079460958"}, {"phone": "0044 20 7946 0958"}),  # the international prefix
        ({"phone": "+14155550100"}, {"phone": "4155550100.0"}),  # a spreadsheet's float
        ({"phone": "+14155550100"}, {"phone": "(415) 555-0100"}),
        ({"email": "ana@example.com"}, {"email": "<Ana@Example.com>"}),
        ({"email": "ana@example.com"}, {"email": "mailto:ana@example.com"}),
    ],
)
def test_the_lead_is_found_as_the_import_stored_it(
    db: Database, stored: dict[str, str], typed: dict[str, str]
) -> None:
    tenant_id = make_tenant(db, country="US")
    actor = make_actor(db, tenant_id, Role.manager)
    lead_id = _lead(db, tenant_id, **stored)
    assert record_reply(db, actor, **typed).lead_id == lead_id


def test_stop_suppresses_the_stored_address_once(db: Database) -> None:
    tenant_id = make_tenant(db)
    actor = make_actor(db, tenant_id, Role.manager)
    _lead(db, tenant_id, phone="+14155550100")
    for typed in ("(415) 555-0100", "+1 415 555 0100"):
        assert record_reply(db, actor, phone=typed, stop=True).opted_out
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        rows = session.execute(select(Suppression.channel, Suppression.address, Suppression.reason)).all()
    assert rows == [("sms", "+14155550100", "stop")]


@pytest.mark.parametrize(
    ("typed", "error", "message"),
    [
        ({"phone": "12345"}, ValidationError, "12345"),
        ({"email": "not an address"}, ValidationError, "not valid"),
        ({"phone": "+14155550199"}, NotFound, "no lead with phone \\+14155550199"),
        ({}, ValidationError, "one of them"),
    ],
)
def test_what_matches_no_lead_is_a_clear_error(
    db: Database, typed: dict[str, str], error: type[Exception], message: str
) -> None:
    tenant_id = make_tenant(db)
    _lead(db, tenant_id, phone="+14155550100")
    with pytest.raises(error, match=message):
        record_reply(db, make_actor(db, tenant_id, Role.manager), **typed)
