"""A bounced phone or email gives way to the lead's next alternate; a STOP or unsubscribe never does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import Database
from core.models import AuditLog, Lead, Role
from core.permissions import Actor
from core.suppressions import import_suppressions
from tests.factories import make_actor, make_tenant


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db), Role.admin, "ada")


def _lead(db: Database, actor: Actor, **values: object) -> int:
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        lead = Lead(first_name="Grace", **values)
        session.add(lead)
        session.flush()
        return lead.id


def _get(db: Database, actor: Actor, lead_id: int) -> Lead:
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        session.expunge(lead)
        return lead


def _bounce(db: Database, actor: Actor, channel: str, *addresses: str, reason: str = "bounce") -> None:
    data = ("address\n" + "\n".join(addresses) + "\n").encode()
    import_suppressions(db, actor, file_name="bounces.csv", data=data, channel=channel, reason=reason)


WORK = {"channel": "email", "value": "grace@work.example", "label": "Work Email"}
HOME = {"channel": "email", "value": "grace@home.example", "label": "Home Email"}
MOBILE = {"channel": "sms", "value": "+14155550123", "label": "Mobile Phone"}


def test_a_bounced_email_gives_way_to_the_next_alternate(db: Database, admin: Actor) -> None:
    lead_id = _lead(db, admin, email="grace@old.example", alternates=[MOBILE, WORK, HOME])
    _bounce(db, admin, "email", "grace@old.example")
    lead = _get(db, admin, lead_id)
    assert lead.email == "grace@work.example"
    assert lead.alternates == [MOBILE, HOME, {"channel": "email", "value": "grace@old.example",
                                               "label": "bounced", "bounced": True}]
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "leads.fall_back")).one()
    assert entry.details == {"channel": "email", "lead_ids": [lead_id]}
    # The new address bounces too: the home address is next; the bounced one is never taken back.
    _bounce(db, admin, "email", "grace@work.example")
    again = _get(db, admin, lead_id)
    assert again.email == "grace@home.example"
    _bounce(db, admin, "email", "grace@home.example")
    assert _get(db, admin, lead_id).email == "grace@home.example"  # nothing left to fall back to


def test_an_alternate_that_is_suppressed_or_another_leads_own_is_skipped(db: Database, admin: Actor) -> None:
    _lead(db, admin, email="grace@work.example")  # another lead owns the work address
    _bounce(db, admin, "email", "grace@home.example", reason="manual")
    lead_id = _lead(db, admin, email="grace@old.example", alternates=[WORK, HOME])
    _bounce(db, admin, "email", "grace@old.example")
    assert _get(db, admin, lead_id).email == "grace@old.example"


def test_a_bounced_phone_gives_way_to_the_next_phone(db: Database, admin: Actor) -> None:
    lead_id = _lead(db, admin, phone="+14155550100", alternates=[WORK, MOBILE])
    _bounce(db, admin, "sms", "+1 415 555 0100")
    lead = _get(db, admin, lead_id)
    assert lead.phone == "+14155550123" and lead.email is None


@pytest.mark.parametrize("reason", ["stop", "unsubscribe", "manual"])
def test_the_persons_own_word_never_falls_back(db: Database, admin: Actor, reason: str) -> None:
    lead_id = _lead(db, admin, email="grace@old.example", alternates=[WORK])
    _bounce(db, admin, "email", "grace@old.example", reason=reason)
    assert _get(db, admin, lead_id).email == "grace@old.example"
