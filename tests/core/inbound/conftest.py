"""A tenant with a running campaign, a lead it messaged, and replies arriving from that lead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from core.inbound.queue import ReplyProcessed, process_waiting_replies
from core.inbound.store import record_inbound
from core.models import Campaign, CampaignLead, InboundMessage, Lead, Message, Role, Tenant
from core.permissions import Actor
from core.pipeline.runtime import PipelineRuntime
from tests.conftest import make_settings
from tests.factories import make_actor, make_tenant

# A Wednesday, 10:00 in New York: inside the default send window.
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
PLAYBOOK = {"default": {"proof_points": ["Teams using Leadflow book 30% more meetings"]}}
LEAD_PHONE = "+12125550101"
LEAD_EMAIL = "ada@analytical.example"


@dataclass
class Replies:
    db: Database
    tenant_id: int
    manager: Actor
    campaign_id: int
    lead_id: int
    enrolment_id: int
    _ids: Any = field(default_factory=lambda: count(1))

    def runtime(self, **settings: Any) -> PipelineRuntime:
        """The runner's runtime at NOW; `settings` override the database's (a model provider)."""
        return PipelineRuntime.from_settings(make_settings(**{**self.db.settings.model_dump(), **settings}),
                                             self.db, now=lambda: NOW)

    def receive(self, body: str, *, channel: str = "sms", subject: str | None = None,
                sender: str | None = None, at: datetime = NOW) -> int:
        """A reply from the lead (or `sender`), stored as the webhook or mailbox poll stores it."""
        default = LEAD_PHONE if channel == "sms" else LEAD_EMAIL
        recorded = record_inbound(
            self.db, tenant_id=self.tenant_id, channel=channel, from_address=sender or default,
            to_address="+12125550000" if channel == "sms" else "sales@acme.example", body=body,
            provider="twilio" if channel == "sms" else "imap",
            provider_message_id=f"SM{next(self._ids):032d}", received_at=at, subject=subject,
        )
        return recorded.id

    def run(self, runtime: PipelineRuntime | None = None) -> list[ReplyProcessed]:
        return process_waiting_replies(self.db, runtime or self.runtime(), limit=50, lease_seconds=120)

    def reply(self, inbound_id: int) -> InboundMessage:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            row = session.get(InboundMessage, inbound_id)
            assert row is not None
            session.expunge(row)
            return row

    def enrolment(self, enrolment_id: int | None = None) -> CampaignLead:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            row = session.get(CampaignLead, enrolment_id or self.enrolment_id)
            assert row is not None
            session.expunge(row)
            return row

    def lead(self) -> Lead:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            row = session.scalar(select(Lead).where(Lead.id == self.lead_id))
            assert row is not None
            session.expunge(row)
            return row

    def campaign(self, name: str, *, stop_classes: list[str] | None = None, status: str = "running",
                 step: int = 1) -> tuple[int, int]:
        """Another campaign the lead is enrolled in, waiting for follow-up `step`: (campaign, enrolment)."""
        with self.db.session(tenant_id=self.tenant_id) as session, session.begin():
            campaign = Campaign(name=name, channel="sms", status=status, system_prompt="Be brief.",
                                model="gpt-4o-mini", steps=[{"delay_hours": 0}, {"delay_hours": 72}],
                                created_by=self.manager.user_id)
            if stop_classes is not None:
                campaign.reply_stop_classes = stop_classes
            session.add(campaign)
            session.flush()
            enrolment = CampaignLead(campaign_id=campaign.id, lead_id=self.lead_id, step=step,
                                     status="pending", next_action_at=NOW + timedelta(days=2))
            session.add(enrolment)
            session.flush()
            return campaign.id, enrolment.id


@pytest.fixture
def replies(db: Database) -> Replies:
    return seed_replies(db)


def seed_replies(db: Database, *, lead_time_zone: str = "America/New_York") -> Replies:
    """The tenant, its manager, a running campaign and a lead it messaged yesterday."""
    tenant_id = make_tenant(db)
    manager = make_actor(db, tenant_id, Role.manager)
    with db.session(tenant_id=tenant_id) as session, session.begin():
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.playbook = PLAYBOOK
        tenant.postal_address = "Acme Inc, 1 Main St, Springfield"
        tenant.sms_sender_id = "+12125550000"
        tenant.email_sender = "sales@acme.example"
        campaign = Campaign(name="Spring push", channel="sms", status="running", system_prompt="Be brief.",
                            model="gpt-4o-mini", steps=[{"delay_hours": 0}, {"delay_hours": 72}],
                            created_by=manager.user_id)
        lead = Lead(first_name="Ada", last_name="Lovelace", company="Analytical Engines", title="CTO",
                    phone=LEAD_PHONE, email=LEAD_EMAIL, time_zone=lead_time_zone)
        session.add_all([campaign, lead])
        session.flush()
        # The first touch went out yesterday; the follow-up is due in two days.
        enrolment = CampaignLead(campaign_id=campaign.id, lead_id=lead.id, step=1, status="pending",
                                 next_action_at=NOW + timedelta(days=2),
                                 research=[{"fact": "Analytical Engines builds difference engines",
                                            "source": "https://analytical.example"}])
        session.add(enrolment)
        session.flush()
        session.add(Message(campaign_id=campaign.id, campaign_lead_id=enrolment.id, lead_id=lead.id,
                            step=0, channel="sms", to_address=LEAD_PHONE, body="Hi Ada, quick idea?",
                            provider="outbox", status="sent", idempotency_key=f"cl{enrolment.id}-s0",
                            created_at=NOW - timedelta(days=1), sent_at=NOW - timedelta(days=1)))
        return Replies(db, tenant_id, manager, campaign.id, lead.id, enrolment.id)
