"""Suppression lists: importing them, looking addresses up, and filtering leads in SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from core.db import Database
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.leads.importer import import_leads
from core.leads.queries import opt_out_leads
from core.models import AuditLog, Lead, Role, Suppression
from core.permissions import Actor
from core.suppressions import (
    find_lead_opt_out,
    import_suppressions,
    is_suppressed,
    lead_not_suppressed,
    opt_in_lead,
    remove_suppression,
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
    from core.suppressions import add_suppression, list_suppressions

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
    assert remove_suppression(db, admin, manual.id).address == "+14155550100"
    stop = next(r for r in everything.rows if r.reason == "stop")
    with pytest.raises(Conflict, match="because of a STOP reply"):
        remove_suppression(db, admin, stop.id)
    assert list_suppressions(db, admin).total == 2
    with pytest.raises(PermissionDenied):
        list_suppressions(db, make_actor(db, tenant, Role.manager))


# -- removing a suppression says what is true; opting a lead back in ------------------------------


def _lead(db: Database, tenant_id: int, *, phone: str | None = "+14155550100",
          email: str | None = "ada@example.com", opted_out: bool = False) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ada", last_name="Lovelace", phone=phone, email=email,
                    opted_out_at=datetime(2026, 11, 30, tzinfo=UTC) if opted_out else None)
        session.add(lead)
        session.flush()
        return lead.id


def _suppress(db: Database, tenant_id: int, channel: str, address: str, reason: str) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        row = Suppression(channel=channel, address=address, reason=reason)
        session.add(row)
        session.flush()
        return row.id


def _state(db: Database, actor: Actor, lead_id: int) -> tuple[datetime | None, set[tuple[str, str]]]:
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        opted_out = session.scalar(select(Lead.opted_out_at).where(Lead.id == lead_id))
        rows = session.execute(select(Suppression.address, Suppression.reason)).all()
    return opted_out, {(r.address, r.reason) for r in rows}


def _audit(db: Database, actor: Actor) -> list[tuple[str, dict[str, Any]]]:
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(select(AuditLog.action, AuditLog.details).order_by(AuditLog.id)).all()
    return [(r.action, r.details) for r in rows if r.action != "create"]


def test_removing_a_suppression_tells_which_lead_stays_opted_out(db: Database, admin: Actor) -> None:
    lead_id = _lead(db, admin.tenant_id, opted_out=True)
    suppression_id = _suppress(db, admin.tenant_id, "sms", "+14155550100", "manual")
    removed = remove_suppression(db, admin, suppression_id)
    assert (removed.channel, removed.address) == ("sms", "+14155550100")
    [lead] = removed.leads
    assert (lead.lead_id, lead.name, lead.suppressions) == (lead_id, "Ada Lovelace", ())
    # The truth the page tells: off the list, and the lead still opted out.
    assert lead.opted_out_at is not None
    assert _state(db, admin, lead_id)[0] is not None
    nobody = remove_suppression(db, admin, _suppress(db, admin.tenant_id, "email", "x@example.com", "manual"))
    assert nobody.leads == ()


def test_an_admin_opts_a_lead_back_in_with_a_reason_in_the_audit_log(db: Database, admin: Actor) -> None:
    lead_id = _lead(db, admin.tenant_id)
    opt_out_leads(db, admin, [lead_id])  # by hand: opted out, both addresses suppressed by hand
    assert lead_id not in _messageable(db, admin, "sms")

    found = find_lead_opt_out(db, admin, "(415) 555-0100")
    assert found.lead_id == lead_id and found.refusal is None
    done = opt_in_lead(db, admin, lead_id, reason="  She called and asked  to hear from us again ")

    assert done.lead.opted_out_at is None and done.lead.suppressions == ()
    assert sorted(done.removed) == ["+14155550100", "ada@example.com"] and done.kept == ()
    assert _state(db, admin, lead_id) == (None, set())
    assert lead_id in _messageable(db, admin, "sms") and lead_id in _messageable(db, admin, "email")
    audit = _audit(db, admin)
    assert [action for action, _ in audit[-3:]] == ["suppressions.remove", "suppressions.remove",
                                                    "leads.opt_in"]
    details = audit[-1][1]
    assert details["reason"] == "She called and asked to hear from us again"
    assert sorted(details["suppressions_removed"]) == ["+14155550100", "ada@example.com"]
    assert details["was_opted_out_at"]


@pytest.mark.parametrize("reason", ["stop", "unsubscribe"])
def test_a_lead_who_opted_out_themselves_is_not_opted_back_in(
    db: Database, admin: Actor, reason: str
) -> None:
    lead_id = _lead(db, admin.tenant_id, opted_out=True)
    _suppress(db, admin.tenant_id, "email", "ada@example.com", "manual")
    channel, address = ("sms", "+14155550100") if reason == "stop" else ("email", "ada@example.com")
    if reason == "unsubscribe":
        with db.session(tenant_id=admin.tenant_id) as session, session.begin():
            session.execute(update(Suppression).values(reason="unsubscribe"))
    else:
        _suppress(db, admin.tenant_id, channel, address, reason)
    before = _state(db, admin, lead_id)
    assert find_lead_opt_out(db, admin, address).refusal
    with pytest.raises(Conflict) as refused:
        opt_in_lead(db, admin, lead_id, reason="they asked")
    words = "a STOP reply" if reason == "stop" else "an unsubscribe"
    assert str(refused.value) == (
        f"Ada Lovelace cannot be opted back in: {address} is suppressed because of {words}, which "
        "the person made themselves; only they can take it back, so it stays"
    )
    assert _state(db, admin, lead_id) == before
    assert not [a for a, _ in _audit(db, admin) if a == "leads.opt_in"]


def test_a_bounce_stays_on_its_address_while_the_lead_is_opted_back_in(db: Database, admin: Actor) -> None:
    lead_id = _lead(db, admin.tenant_id, opted_out=True)
    _suppress(db, admin.tenant_id, "sms", "+14155550100", "manual")
    _suppress(db, admin.tenant_id, "email", "ada@example.com", "bounce")
    done = opt_in_lead(db, admin, lead_id, reason="new number confirmed by phone")
    assert done.removed == ("+14155550100",)
    assert [(s.address, s.reason) for s in done.kept] == [("ada@example.com", "bounce")]
    assert _state(db, admin, lead_id) == (None, {("ada@example.com", "bounce")})
    assert lead_id in _messageable(db, admin, "sms") and lead_id not in _messageable(db, admin, "email")


def test_opting_in_needs_a_reason_an_admin_and_something_to_undo(db: Database, admin: Actor) -> None:
    lead_id = _lead(db, admin.tenant_id, opted_out=True)
    with pytest.raises(ValidationError, match="give the reason"):
        opt_in_lead(db, admin, lead_id, reason="   ")
    manager = make_actor(db, admin.tenant_id, Role.manager)
    with pytest.raises(PermissionDenied):
        opt_in_lead(db, manager, lead_id, reason="they asked")
    with pytest.raises(PermissionDenied):
        find_lead_opt_out(db, manager, "ada@example.com")
    opt_in_lead(db, admin, lead_id, reason="they asked")
    with pytest.raises(Conflict, match="is not opted out"):
        opt_in_lead(db, admin, lead_id, reason="again")
    with pytest.raises(NotFound, match="no lead has the address bob@example.com"):
        find_lead_opt_out(db, admin, "bob@example.com")
    with pytest.raises(ValidationError, match="12345"):
        find_lead_opt_out(db, admin, "12345")


def _messageable(db: Database, actor: Actor, channel: str) -> set[int]:
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return set(session.scalars(select(Lead.id).where(lead_not_suppressed(channel))))
