"""Erasing a lead on request: what goes, what stays anonymised for the figures, what stays suppressed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from core.analytics.costs import cost_report
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.leads.detail import lead_detail, update_lead
from core.leads.erasure import ERASED_ADDRESS, ERASED_BODY, erase_lead, plan_erasure
from core.leads.importer import import_leads
from core.leads.queries import list_leads, opt_out_leads, undo_opt_out
from core.models import (
    AuditLog,
    CampaignLead,
    Event,
    Lead,
    LeadTag,
    LLMCall,
    Message,
    OutboxMessage,
    Suppression,
)
from core.suppressions import is_suppressed
from tests.core.leads.test_detail import T0, Seeded, seed_lead

PERSONAL = ("Chloé", "Müller", "chloe", "4155550128", "4155550199", "Engines")


def _erase(db: Database, seeded: Seeded) -> None:
    erase_lead(db, seeded.admin, seeded.lead_id, confirm="  chloé   MÜLLER ")


def test_the_plan_counts_what_goes_and_what_stays(db: Database) -> None:
    seeded = seed_lead(db)
    plan = plan_erasure(db, seeded.admin, seeded.lead_id)
    assert (plan.name, plan.tags, plan.enrolments, plan.messages) == ("Chloé Müller", 2, 2, 1)
    assert (plan.addresses, plan.already_suppressed) == (4, 1)


def test_erasure_deletes_the_lead_and_keeps_its_messages_anonymised(db: Database) -> None:
    seeded = seed_lead(db)
    tenant = seeded.admin.tenant_id
    with db.session(tenant_id=tenant, read_only=True) as session:
        spend_before = session.scalar(select(func.sum(LLMCall.cost_microusd)))
    _erase(db, seeded)
    with pytest.raises(NotFound):
        lead_detail(db, seeded.admin, seeded.lead_id)
    assert list(list_leads(db, seeded.admin).rows["id"]) == [seeded.other_lead_id]
    with db.session(tenant_id=tenant, read_only=True) as session:
        assert session.scalar(select(func.count(LeadTag.lead_id))) == 0
        assert session.scalar(select(func.count(CampaignLead.id))) == 0
        assert session.scalar(select(func.count(Event.id))) == 0  # they quoted the lead
        [message] = session.scalars(select(Message)).all()
        [outbox] = session.scalars(select(OutboxMessage)).all()
        calls = session.scalars(select(LLMCall)).all()
        spend_after = session.scalar(select(func.sum(LLMCall.cost_microusd)))
    # The ledger row stays for the figures: campaign, step, channel, segments, status, time.
    assert (message.campaign_id, message.step, message.channel, message.segments, message.status) == (
        seeded.sms_campaign, 0, "sms", 1, "delivered")
    assert message.sent_at is not None
    # ... and nothing in it points to or quotes the person.
    assert (message.lead_id, message.campaign_lead_id) == (None, None)
    assert (message.to_address, message.body, message.subject, message.error) == (
        ERASED_ADDRESS, ERASED_BODY, None, None)
    assert (outbox.to_address, outbox.body) == (ERASED_ADDRESS, ERASED_BODY)
    # The model spend is unchanged: the calls stay, without the enrolment.
    assert spend_after == spend_before == 4_300
    assert [c.campaign_lead_id for c in calls] == [None]
    day = T0.date()
    assert cost_report(db, seeded.admin, start=day, end=day).total_microusd == 4_300  # the Costs page


def test_every_address_of_an_erased_lead_stays_suppressed(db: Database) -> None:
    seeded = seed_lead(db)
    _erase(db, seeded)
    with db.session(tenant_id=seeded.admin.tenant_id, read_only=True) as session:
        rows = {(s.channel, s.address): s.reason for s in session.scalars(select(Suppression))}
        assert all(is_suppressed(session, c, a) for c, a in rows)
    assert rows == {
        ("sms", "+14155550128"): "erasure",
        ("email", "chloe@example.com"): "erasure",
        ("sms", "+14155550199"): "erasure",  # the alternates too
        # Added by hand before: now an erasure, so that no undo lifts it.
        ("email", "chloe.m@home.example"): "erasure",
    }
    # A re-import brings the person back as a lead, but its addresses stay suppressed.
    import_leads(db, seeded.admin, file_name="again.csv", data=b"Name,Phone\nChloe Muller,+14155550128\n")
    with db.session(tenant_id=seeded.admin.tenant_id, read_only=True) as session:
        assert is_suppressed(session, "sms", "+14155550128")


def test_undoing_an_opt_out_from_before_does_not_lift_an_erasure(db: Database) -> None:
    seeded = seed_lead(db)
    done = opt_out_leads(db, seeded.admin, [seeded.lead_id])
    _erase(db, seeded)
    undone = undo_opt_out(db, seeded.admin, done.action_id)
    assert undone.suppressions == 0
    with db.session(tenant_id=seeded.admin.tenant_id, read_only=True) as session:
        assert is_suppressed(session, "sms", "+14155550128")
        assert is_suppressed(session, "email", "chloe@example.com")


def test_the_audit_log_records_the_erasure_without_personal_data(db: Database) -> None:
    seeded = seed_lead(db)
    detail = lead_detail(db, seeded.admin, seeded.lead_id)
    typed = {name: str(value or "") for name, value in detail.fields.items()} | {"company": "Engines Two"}
    update_lead(db, seeded.admin, seeded.lead_id, typed, "vip")
    _erase(db, seeded)
    with db.session(tenant_id=seeded.admin.tenant_id, read_only=True) as session:
        entries = {e.action: e for e in session.scalars(select(AuditLog))}
    erased = entries["lead.erase"]
    assert erased.entity_id == str(seeded.lead_id)
    assert erased.details == {"tags": 1, "enrolments": 2, "messages_anonymised": 1,
                              "addresses_suppressed": 4, "suppressions_added": 3,
                              "audit_entries_redacted": 1}
    # The earlier edit keeps who changed which fields, not the values.
    assert entries["lead.update"].details == {"fields": ["company", "tags"]}
    for entry in (erased, entries["lead.update"]):
        text = json.dumps(entry.details, ensure_ascii=False)
        assert not [p for p in PERSONAL if p in text]


def test_erasure_needs_the_name_typed(db: Database) -> None:
    seeded = seed_lead(db)
    with pytest.raises(ValidationError, match=r"type the lead's name \(Chloé Müller\)"):
        erase_lead(db, seeded.admin, seeded.lead_id, confirm="Chloe")
    assert lead_detail(db, seeded.admin, seeded.lead_id).name == "Chloé Müller"


def test_erasure_waits_while_the_lead_is_being_messaged(db: Database) -> None:
    seeded = seed_lead(db)
    with db.session(tenant_id=seeded.admin.tenant_id) as session, session.begin():
        for enrolment in session.scalars(select(CampaignLead)):
            enrolment.status = "in_progress"
    with pytest.raises(Conflict, match="being messaged right now"):
        _erase(db, seeded)
    with db.session(tenant_id=seeded.admin.tenant_id, read_only=True) as session:
        assert session.scalar(select(func.count(Lead.id))) == 2
