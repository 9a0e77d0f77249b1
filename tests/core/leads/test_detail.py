"""A lead's page: everything about it, read by managers, edited by admins with the import's
normalisation, and never another tenant's lead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from core.db import Database
from core.errors import NotFound, PermissionDenied
from core.leads.detail import LeadEditRefused, lead_detail, update_lead
from core.leads.erasure import erase_lead, plan_erasure
from core.leads.queries import LeadFilter, add_tags, list_leads, opt_out
from core.models import AuditLog, Campaign, CampaignLead, Event, Lead, LLMCall, Message, OutboxMessage, Role
from core.permissions import Actor
from core.suppressions import add_suppression
from tests.factories import insert_leads, make_actor, make_campaign, make_tenant

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    admin: Actor
    lead_id: int
    other_lead_id: int
    sms_campaign: int
    email_campaign: int


def seed_lead(db: Database) -> Seeded:
    """A lead with a history (tags, alternates, two campaigns, a message, a model call, a reply,
    a suppressed alternate) beside a plain one."""
    tenant = make_tenant(db)
    admin = make_actor(db, tenant, Role.admin)
    lead_id, other = insert_leads(db, tenant, 2)
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(update(Lead).where(Lead.id == lead_id).values(
            first_name="Chloé", last_name="Müller", phone="+14155550128", email="chloe@example.com",
            company="Engines Ltd",
            alternates=[{"channel": "sms", "value": "+14155550199", "label": "Home phone"},
                        {"channel": "email", "value": "chloe.m@home.example", "label": "Private email"}],
            replied_at=T0 + timedelta(hours=5)))
    add_tags(db, admin, [lead_id], "vip, fair")
    sms = make_campaign(db, tenant, "Spring push", channel="sms")
    email = make_campaign(db, tenant, "Autumn mail", channel="email")
    with db.session(tenant_id=tenant) as session, session.begin():
        session.get(Campaign, sms).steps = [{"delay_hours": 0}, {"delay_hours": 48}]  # type: ignore[union-attr]
        first = CampaignLead(campaign_id=sms, lead_id=lead_id, step=1, status="pending",
                             next_action_at=T0 + timedelta(hours=48), cost_microusd=4_300,
                             replied_at=T0 + timedelta(hours=5), draft_body="Hi Chloé")
        second = CampaignLead(campaign_id=email, lead_id=lead_id, status="awaiting_approval",
                              draft_body="Dear Chloé")
        session.add_all([first, second])
        session.flush()
        session.add_all([
            LLMCall(campaign_id=sms, campaign_lead_id=first.id, node="compose", provider="offline",
                    model="gpt-4o-mini", cost_microusd=4_300, created_at=T0 - timedelta(minutes=1)),
            Message(campaign_id=sms, campaign_lead_id=first.id, lead_id=lead_id, step=0, channel="sms",
                    to_address="+14155550128", body="Hi Chloé, about Engines Ltd", segments=1,
                    provider="outbox", status="delivered", idempotency_key=f"{first.id}-0",
                    error="carrier said +14155550128 is busy", created_at=T0, sent_at=T0),
            OutboxMessage(idempotency_key=f"{first.id}-0", channel="sms", to_address="+14155550128",
                          body="Hi Chloé, about Engines Ltd"),
            Event(campaign_id=sms, campaign_lead_id=first.id, node="compose",
                  message="wrote to Chloé Müller"),
        ])
    add_suppression(db, admin, channel="email", address="chloe.m@home.example")
    return Seeded(admin, lead_id, other, sms, email)


def test_the_page_holds_everything_about_the_lead(db: Database) -> None:
    seeded = seed_lead(db)
    detail = lead_detail(db, seeded.admin, seeded.lead_id)
    assert detail.name == "Chloé Müller"
    assert detail.fields["phone"] == "+14155550128" and detail.fields["company"] == "Engines Ltd"
    assert [a["label"] for a in detail.alternates] == ["Home phone", "Private email"]
    assert detail.tags == ["fair", "vip"]
    assert detail.addresses == [("sms", "+14155550128"), ("email", "chloe@example.com"),
                                ("sms", "+14155550199"), ("email", "chloe.m@home.example")]
    by_campaign = {e.campaign: e for e in detail.enrolments}
    assert by_campaign["Spring push"].step == "step 2 of 2"
    assert by_campaign["Spring push"].state == "follow-up due 2026-12-02 09:00 UTC"
    assert by_campaign["Autumn mail"].state == "draft waiting for review"
    [message] = detail.messages
    assert (message.campaign, message.step, message.channel, message.status) == ("Spring push", 1, "sms",
                                                                                 "delivered")
    assert message.body == "Hi Chloé, about Engines Ltd" and message.sent_at == T0
    assert message.cost_microusd == 4_300  # the model call that wrote it
    assert [(r.campaign, r.at) for r in detail.replies] == [("Spring push", T0 + timedelta(hours=5))]
    # The alternate email is suppressed: it shows on the lead, with why.
    assert [(s.channel, s.address, s.reason) for s in detail.suppressions] == [
        ("email", "chloe.m@home.example", "manual")]
    assert detail.opted_out_at is None
    assert [a.action for a in detail.audit] == ["tagged"]  # the bulk tag listed the lead
    assert detail.audit[0].details == "vip, fair"


def test_the_record_without_its_history_is_the_same_record(db: Database) -> None:
    seeded = seed_lead(db)
    full = lead_detail(db, seeded.admin, seeded.lead_id)
    record = lead_detail(db, seeded.admin, seeded.lead_id, history=False)
    assert (record.enrolments, record.messages, record.replies, record.audit) == ([], [], [], [])
    assert (record.name, record.fields, record.alternates, record.tags, record.suppressions) == (
        full.name, full.fields, full.alternates, full.tags, full.suppressions)
    assert (record.opted_out_at, record.replied_at, record.created_at) == (
        full.opted_out_at, full.replied_at, full.created_at)


@pytest.mark.parametrize(("reason", "state"), [
    # Held back by a send rule: why, and until when on the tenant's clock (the reason says it).
    ("contact cap reached (1 message per lead a day, all campaigns together); "
     "due again at 2026-12-01 04:00 EST",
     "held back: contact cap reached (1 message per lead a day, all campaigns together); "
     "due again at 2026-12-01 04:00 EST"),
    ("public holiday in PT (Restoration of Independence Day); due again at 2026-12-02 00:00 EST",
     "held back: public holiday in PT (Restoration of Independence Day); due again at 2026-12-02 00:00 EST"),
    # No reason recorded: when it is due is all there is to say.
    (None, "held back until 2026-12-01 09:00 UTC"),
])
def test_a_held_back_lead_says_why(db: Database, reason: str | None, state: str) -> None:
    seeded = seed_lead(db)
    with db.session(tenant_id=seeded.admin.tenant_id) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.campaign_id == seeded.email_campaign).values(
            status="deferred", status_reason=reason, next_action_at=T0 + timedelta(days=1)))
    by_campaign = {e.campaign: e for e in lead_detail(db, seeded.admin, seeded.lead_id).enrolments}
    assert by_campaign["Autumn mail"].state == state


def test_a_bulk_action_on_other_leads_is_not_in_this_leads_audit(db: Database) -> None:
    seeded = seed_lead(db)
    opt_out(db, seeded.admin, [seeded.other_lead_id])
    assert [a.action for a in lead_detail(db, seeded.admin, seeded.other_lead_id).audit] == ["opted out"]
    assert [a.action for a in lead_detail(db, seeded.admin, seeded.lead_id).audit] == ["tagged"]


def test_another_tenants_lead_is_not_found(db: Database) -> None:
    seeded = seed_lead(db)
    stranger = make_actor(db, make_tenant(db, "Rival"), Role.owner)
    calls = [
        lambda: lead_detail(db, stranger, seeded.lead_id),
        lambda: update_lead(db, stranger, seeded.lead_id, {"first_name": "X", "phone": "+14155550100"}, ""),
        lambda: plan_erasure(db, stranger, seeded.lead_id),
        lambda: erase_lead(db, stranger, seeded.lead_id, confirm="Chloé Müller"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="does not exist") as refused:
            call()
        assert "Chloé" not in str(refused.value)
    assert lead_detail(db, seeded.admin, seeded.lead_id).fields["first_name"] == "Chloé"


def test_managers_read_leads_and_analysts_do_not(db: Database) -> None:
    seeded = seed_lead(db)
    manager = make_actor(db, seeded.admin.tenant_id, Role.manager)
    analyst = make_actor(db, seeded.admin.tenant_id, Role.analyst)
    assert lead_detail(db, manager, seeded.lead_id).name == "Chloé Müller"
    assert list_leads(db, manager).total == 2
    with pytest.raises(PermissionDenied):
        lead_detail(db, analyst, seeded.lead_id)
    with pytest.raises(PermissionDenied):
        update_lead(db, manager, seeded.lead_id, {"phone": "+14155550128"}, "")
    with pytest.raises(PermissionDenied):
        erase_lead(db, manager, seeded.lead_id, confirm="Chloé Müller")


def _fields(detail_fields: dict[str, object], **changes: str) -> dict[str, str]:
    return {name: str(value or "") for name, value in detail_fields.items()} | changes


def test_an_edit_is_normalised_like_an_import_and_audited_before_and_after(db: Database) -> None:
    seeded = seed_lead(db)
    before = lead_detail(db, seeded.admin, seeded.lead_id)
    typed = _fields(before.fields, phone="(415) 555-0177", email=" Chloe.Muller@Example.COM ",
                    last_name="MÜLLER-DUBOIS", website="https://www.engines.example/about")
    edited = update_lead(db, seeded.admin, seeded.lead_id, typed, "VIP; Prospect")
    assert set(edited.changed) == {"phone", "email", "last_name", "website", "tags"}
    after = lead_detail(db, seeded.admin, seeded.lead_id)
    assert after.fields["phone"] == "+14155550177"
    assert after.fields["email"] == "chloe.muller@example.com"
    assert after.fields["last_name"] == "Müller-Dubois"
    assert after.fields["website"] == "engines.example"
    assert after.tags == ["prospect", "vip"]
    assert list_leads(db, seeded.admin, LeadFilter(search="dubois")).total == 1  # search follows the edit
    entry = after.audit[0]
    assert entry.action == "edited"
    assert "phone: +14155550128 → +14155550177" in entry.details
    with db.session(tenant_id=seeded.admin.tenant_id, read_only=True) as session:
        details = session.scalar(select(AuditLog.details).where(AuditLog.action == "lead.update"))
    assert details["before"]["tags"] == ["fair", "vip"] and details["after"]["tags"] == ["prospect", "vip"]
    assert details["before"]["email"] == "chloe@example.com"


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({"phone": "12345"}, ["phone '12345' is not a valid number for US"]),
        ({"email": "chloe@"}, ["email"]),
        ({"phone": "", "email": ""}, ["no phone or email: a lead needs at least one"]),
        ({"country": "Atlantis"}, ["country 'Atlantis' is not recognised"]),
        ({"phone": "12345", "time_zone": "Mars/Olympus"},
         ["phone '12345' is not a valid number for US", "time zone 'Mars/Olympus' is not an IANA name"]),
    ],
)
def test_an_edit_the_import_would_refuse_is_refused_with_every_problem(
    db: Database, changes: dict[str, str], problems: list[str]
) -> None:
    seeded = seed_lead(db)
    before = lead_detail(db, seeded.admin, seeded.lead_id)
    with pytest.raises(LeadEditRefused) as refused:
        update_lead(db, seeded.admin, seeded.lead_id, _fields(before.fields, **changes), "vip")
    assert len(refused.value.problems) == len(problems)
    for problem, expected in zip(refused.value.problems, problems, strict=True):
        assert expected in problem
    assert lead_detail(db, seeded.admin, seeded.lead_id) == before  # nothing saved, nothing audited


def test_an_edit_keeps_the_fields_it_does_not_name(db: Database) -> None:
    seeded = seed_lead(db)
    update_lead(db, seeded.admin, seeded.lead_id, {"title": "CTO", "notes": ""}, "vip")
    after = lead_detail(db, seeded.admin, seeded.lead_id)
    assert (after.fields["title"], after.fields["notes"]) == ("CTO", None)
    assert (after.name, after.fields["email"], after.fields["company"]) == (
        "Chloé Müller", "chloe@example.com", "Engines Ltd")
    assert after.tags == ["vip"]


def test_an_edit_may_not_take_another_leads_phone(db: Database) -> None:
    seeded = seed_lead(db)
    other = lead_detail(db, seeded.admin, seeded.other_lead_id)
    before = lead_detail(db, seeded.admin, seeded.lead_id)
    with pytest.raises(LeadEditRefused, match=f"belongs to another lead \\(#{seeded.other_lead_id}\\)"):
        update_lead(db, seeded.admin, seeded.lead_id, _fields(before.fields, phone=other.fields["phone"]), "")
