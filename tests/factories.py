"""Small builders for test data, through the real services where one exists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from core.auth import create_user
from core.campaign_runs import start_campaign
from core.campaigns import create_campaign
from core.db import Database
from core.models import Campaign, CampaignLead, Lead, LLMCall, Message, Role, Tenant
from core.permissions import Actor, system_actor
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from core.tenants import create_tenant
from jobs.claims import claim_due_enrolments

PASSWORD = "correct horse battery"


def make_tenant(db: Database, name: str = "Acme", country: str = "US") -> int:
    return create_tenant(db, name, country).id


def make_actor(db: Database, tenant_id: int, role: Role = Role.owner, username: str | None = None) -> Actor:
    login = username or f"{role.value}-{tenant_id}"
    user = create_user(db, system_actor(tenant_id), username=login, name=login.title(),
                       email=f"{login}@example.com", role=role, password=PASSWORD)
    return Actor(user_id=user.id, tenant_id=tenant_id, role=role, username=user.username,
                 name=user.name)


def make_campaign(db: Database, tenant_id: int, name: str = "Spring push", *,
                  channel: str = "sms", status: str = "running",
                  created_at: datetime | None = None) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        campaign = Campaign(name=name, channel=channel, status=status, system_prompt="Be brief.",
                            model="gpt-4o-mini", created_at=created_at or datetime.now(UTC))
        session.add(campaign)
        session.flush()
        return campaign.id


def make_lead(db: Database, tenant_id: int, *, industry: str | None = None, title: str | None = None,
              opted_out_at: datetime | None = None) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ada", industry=industry, title=title, opted_out_at=opted_out_at)
        session.add(lead)
        session.flush()
        return lead.id


def enrol(db: Database, tenant_id: int, campaign_id: int, lead_id: int, *, variant: str = "A",
          status: str = "sent", cost_microusd: int = 0, replied_at: datetime | None = None,
          created_at: datetime | None = None, first_touch: str | None = None,
          sent_at: datetime | None = None) -> int:
    """Enrol a lead; `first_touch` adds its step-0 message with that status, sent at `sent_at`."""
    with db.session(tenant_id=tenant_id) as session, session.begin():
        enrolment = CampaignLead(campaign_id=campaign_id, lead_id=lead_id, variant=variant,
                                 status=status, cost_microusd=cost_microusd, replied_at=replied_at,
                                 created_at=created_at or datetime.now(UTC))
        session.add(enrolment)
        session.flush()
        if first_touch is not None:
            session.add(Message(campaign_id=campaign_id, campaign_lead_id=enrolment.id,
                                lead_id=lead_id, step=0, channel="sms", to_address="+14155550100",
                                body="Hi", provider="outbox", status=first_touch,
                                idempotency_key=f"{enrolment.id}-0", sent_at=sent_at))
        return enrolment.id


def one_reply_in_three_campaigns(db: Database, tenant_id: int, *, at: datetime) -> None:
    """Two leads in three campaigns each; one replied once: one reply from two leads contacted.

    A reply stops every sequence of the lead, so each of its enrolments carries it.
    """
    lead, quiet = make_lead(db, tenant_id), make_lead(db, tenant_id)
    for name in ("First", "Second", "Third"):
        campaign = make_campaign(db, tenant_id, name)
        enrol(db, tenant_id, campaign, lead, first_touch="delivered", sent_at=at, replied_at=at)
        enrol(db, tenant_id, campaign, quiet, first_touch="sent", sent_at=at)


def add_llm_call(db: Database, tenant_id: int, *, cost_microusd: int, created_at: datetime,
                 campaign_id: int | None = None, model: str = "gpt-4o-mini", node: str = "compose",
                 input_tokens: int = 100, output_tokens: int = 50) -> None:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        session.add(LLMCall(campaign_id=campaign_id, node=node, provider="offline", model=model,
                            input_tokens=input_tokens, output_tokens=output_tokens,
                            cost_microusd=cost_microusd, created_at=created_at))


AREA_CODES = ("202", "212", "213", "312", "415", "617", "718", "305", "404", "512")


def insert_leads(db: Database, tenant_id: int, count: int, *, start: int = 0,
                 **fields: object) -> list[int]:
    """`count` leads with distinct valid US numbers and emails, inserted in one statement."""
    rows = [
        {"tenant_id": tenant_id, "first_name": f"Lead{n}", "last_name": "Test",
         "phone": f"+1{AREA_CODES[n // 10_000]}555{n % 10_000:04d}",
         "email": f"lead{n}@example.com", "company": f"Company {n}", "title": "Head of Sales",
         "country": "US", "time_zone": "UTC", "custom_fields": {}, **fields}
        for n in range(start, start + count)
    ]
    with db.session(tenant_id=tenant_id) as session, session.begin():
        return list(session.scalars(insert(Lead).returning(Lead.id), rows))


def zone_at_midday(now: datetime | None = None) -> str:
    """An Etc/GMT zone in which it is now between 11:00 and 13:00, so every send window is open."""
    hour = (now or datetime.now(UTC)).hour
    offset = 12 - hour  # local = UTC + offset
    offset = offset - 24 if offset > 14 else offset + 24 if offset < -12 else offset
    # Etc/GMT zones carry the POSIX sign: Etc/GMT-3 is three hours AHEAD of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@dataclass(frozen=True)
class SeededRun:
    owner: Actor
    campaign_id: int
    campaign_lead_ids: list[int]
    outcomes: dict[int, str]


def seed_run(db: Database, *, leads: int = 3, tenant_id: int | None = None, process: int | None = None,
             name: str = "Autumn SMS", **fields: Any) -> SeededRun:
    """A tenant with `leads` leads in their send window, a started SMS campaign, and `process` of
    its leads (all by default) claimed and run through the offline pipeline."""
    if tenant_id is None:
        tenant_id = make_tenant(db)
        with db.session(system=True) as session, session.begin():
            session.execute(update(Tenant).where(Tenant.id == tenant_id)
                            .values(postal_address="1 Main St, Springfield"))
        insert_leads(db, tenant_id, leads, time_zone=zone_at_midday())
    owner = make_actor(db, tenant_id, Role.owner, f"owner-{tenant_id}-{name.split()[0].lower()}")
    campaign = create_campaign(db, owner, name=name, channel="sms", **fields)
    start_campaign(db, owner, campaign.id)
    runtime = PipelineRuntime.from_settings(db.settings, db)
    claimed = claim_due_enrolments(db, worker_id="test-worker", limit=leads if process is None else process,
                              now=datetime.now(UTC), lease_seconds=60)
    outcomes = {cl: process_campaign_lead(db, runtime, cl, lease_owner="test-worker") for cl in claimed}
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        ids = list(session.scalars(select(CampaignLead.id).where(
            CampaignLead.campaign_id == campaign.id).order_by(CampaignLead.id)))
    return SeededRun(owner, campaign.id, ids, outcomes)


# Four people, three of them named Grace or Gracie: what a search for "grace" finds.
GRACES = (
    b"Name,Phone,Email\n"
    b"Grace Hopper,+1 415 555 0101,grace@navy.example\n"
    b"Grace Kelly,+1 415 555 0102,kelly@monaco.example\n"
    b"Gracie Allen,+1 415 555 0103,\n"
    b"Ada Lovelace,+1 415 555 0104,ada@engines.example\n"
)
