"""Suppression lists: importing them, looking addresses up, and filtering leads in SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import Database
from core.errors import PermissionDenied, ValidationError
from core.leads.importer import import_leads
from core.models import Lead, Role, Suppression
from core.permissions import Actor
from core.suppressions import (
    import_suppressions,
    is_suppressed,
    lead_not_suppressed,
    suppressed_addresses,
)
from tests.factories import make_actor, make_tenant


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db), Role.admin)


@pytest.mark.parametrize(
    ("data", "channel", "expected", "rejected"),
    [
        # A provider's STOP export: the phone column is found by its name.
        ((b"Date,From,Phone Number\n2026-01-01,x,(415) 555-0100\n2026-01-02,y,+14155550100\n"
         b"2026-01-03,z,12345\n"), "sms", {"+14155550100"}, 1),
        # A bare list without a header row: the first line is an address too.
        (b"+1 415 555 0101\n415.555.0102\n", "sms", {"+14155550101", "+14155550102"}, 0),
        (b"Email\nAda@Example.com\nada@example.com\nnot-an-email\n", "email", {"ada@example.com"}, 1),
        # Several columns, none named: the one where the addresses parse is used.
        (b"note,who\nhi,bob@example.org\nyo,carl@example.org\n", "email",
         {"bob@example.org", "carl@example.org"}, 0),
    ],
)
def test_import_normalises_and_suppresses(
    db: Database, admin: Actor, data: bytes, channel: str, expected: set[str], rejected: int
) -> None:
    summary = import_suppressions(db, admin, file_name="stop.csv", data=data, channel=channel,
                                  reason="stop")
    assert (summary.added, summary.rejected) == (len(expected), rejected)
    with db.session(tenant_id=admin.tenant_id) as session:
        rows = session.scalars(select(Suppression)).all()
        assert {r.address for r in rows} == expected
        assert {(r.channel, r.reason) for r in rows} == {(channel, "stop")}
    again = import_suppressions(db, admin, file_name="stop.csv", data=data, channel=channel)
    assert again.added == 0


def test_lookups_single_and_bulk(db: Database, admin: Actor) -> None:
    import_suppressions(db, admin, file_name="s.csv", data=b"phone\n4155550100\n", channel="sms")
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        assert is_suppressed(session, "sms", "+14155550100")
        assert not is_suppressed(session, "email", "+14155550100")
        assert not is_suppressed(session, "sms", None)
        found = suppressed_addresses(session, "sms", ["+14155550100", "+14155550101", None])
        assert found == {"+14155550100"}
    other = make_actor(db, make_tenant(db, "Other"), Role.admin)
    with db.session(tenant_id=other.tenant_id, read_only=True) as session:
        assert not is_suppressed(session, "sms", "+14155550100")


def test_suppressed_and_opted_out_leads_are_filtered_out(db: Database, admin: Actor) -> None:
    import_leads(db, admin, file_name="l.csv",
                 data=b"Phone,Email\n4155550100,a@example.com\n4155550101,b@example.com\n,c@example.com\n")
    import_suppressions(db, admin, file_name="s.csv", data=b"phone\n4155550100\n", channel="sms")
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        sms = session.scalars(select(Lead.phone).where(lead_not_suppressed("sms"))).all()
        email = session.scalars(select(Lead.email).where(lead_not_suppressed("email"))).all()
    assert sms == ["+14155550101"]
    assert sorted(email) == ["a@example.com", "b@example.com", "c@example.com"]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"channel": "fax"}, "use sms or email"), ({"channel": "sms", "reason": "dislike"}, "use stop")],
)
def test_bad_options(db: Database, admin: Actor, options: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        import_suppressions(db, admin, file_name="s.csv", data=b"phone\n4155550100\n", **options)


def test_only_admins_import_suppressions(db: Database, admin: Actor) -> None:
    manager = make_actor(db, admin.tenant_id, Role.manager)
    with pytest.raises(PermissionDenied):
        import_suppressions(db, manager, file_name="s.csv", data=b"phone\n4155550100\n", channel="sms")


def test_suppression_list_by_hand_paged_and_undone(db: Database) -> None:
    from core.errors import Conflict, PermissionDenied, ValidationError
    from core.models import Role, Suppression
    from core.suppressions import add_suppression, list_suppressions, remove_suppression
    from tests.factories import make_actor, make_tenant

    tenant = make_tenant(db)
    admin = make_actor(db, tenant, Role.admin)
    assert add_suppression(db, admin, channel="sms", address="(415) 555-0100") is True
    assert add_suppression(db, admin, channel="sms", address="+1 415 555 0100") is False
    assert add_suppression(db, admin, channel="email", address="Ann@Example.com") is True
    with pytest.raises(ValidationError, match="12345"):
        add_suppression(db, admin, channel="sms", address="12345")
    with db.session(tenant_id=tenant) as session, session.begin():
        session.add(Suppression(channel="sms", address="+14155550199", reason="stop"))

    everything = list_suppressions(db, admin)
    assert everything.total == 3
    phones = list_suppressions(db, admin, channel="sms", page_size=1, page=2)
    assert (phones.total, phones.pages, len(phones.rows)) == (2, 2, 1)
    found = list_suppressions(db, admin, search="ann@")
    assert [r.address for r in found.rows] == ["ann@example.com"]

    manual = next(r for r in everything.rows if r.address == "+14155550100")
    assert remove_suppression(db, admin, manual.id) == "+14155550100"
    stop = next(r for r in everything.rows if r.reason == "stop")
    with pytest.raises(Conflict, match="because of a stop"):
        remove_suppression(db, admin, stop.id)
    assert list_suppressions(db, admin).total == 2
    with pytest.raises(PermissionDenied):
        list_suppressions(db, make_actor(db, tenant, Role.manager))
