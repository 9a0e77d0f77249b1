"""Seeding for pipeline tests: a tenant, a campaign, leads enrolled and claimed, and a frozen clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from sqlalchemy import select, update

from core.channels.registry import senders_from_settings
from core.config import Settings
from core.db import Database
from core.models import (
    Campaign,
    CampaignLead,
    EnrolmentStatus,
    Event,
    Lead,
    Message,
    SenderVerification,
    Tenant,
)
from core.pipeline.service import PipelineRuntime
from tests.conftest import make_settings
from tests.factories import make_tenant
from tests.support.fake_openai import FakeOpenAI

# A Wednesday, 10:00 in New York: inside the default send window.
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
WORKER = "worker-1"
PLAYBOOK = {
    "default": {"proof_points": ["Teams using Leadflow book 30% more meetings"]},
    "Software": {"value_propositions": ["Ship outreach without hiring SDRs"]},
}


@dataclass
class Seed:
    db: Database
    tenant_id: int
    campaign_id: int

    def lead(self, **fields: Any) -> int:
        values: dict[str, Any] = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Analytical Engines",
            "title": "CTO",
            "industry": "Software",
            "phone": "+12125550101",
            "email": "ada@analytical.example",
            "time_zone": "America/New_York",
        }
        values.update(fields)
        with self.db.session(tenant_id=self.tenant_id) as session, session.begin():
            lead = Lead(tenant_id=self.tenant_id, **values)
            session.add(lead)
            session.flush()
            return lead.id

    def enrol(self, lead_id: int | None = None, **fields: Any) -> int:
        """An enrolment already claimed by WORKER, as the runner leaves it."""
        lead_id = lead_id if lead_id is not None else self.lead()
        values: dict[str, Any] = {
            "status": EnrolmentStatus.in_progress.value,
            "lease_owner": WORKER,
            "lease_expires_at": NOW + timedelta(minutes=2),
            "attempts": 1,
        }
        values.update(fields)
        with self.db.session(tenant_id=self.tenant_id) as session, session.begin():
            enrolment = CampaignLead(
                tenant_id=self.tenant_id, campaign_id=self.campaign_id, lead_id=lead_id, **values
            )
            session.add(enrolment)
            session.flush()
            return enrolment.id

    def claim(self, campaign_lead_id: int, owner: str = WORKER) -> None:
        with self.db.session(tenant_id=self.tenant_id) as session, session.begin():
            session.execute(
                update(CampaignLead)
                .where(CampaignLead.id == campaign_lead_id)
                .values(
                    status=EnrolmentStatus.in_progress.value,
                    lease_owner=owner,
                    lease_expires_at=NOW + timedelta(minutes=2),
                    attempts=CampaignLead.attempts + 1,
                )
            )

    def campaign(self, **fields: Any) -> None:
        with self.db.session(tenant_id=self.tenant_id) as session, session.begin():
            session.execute(update(Campaign).where(Campaign.id == self.campaign_id).values(**fields))

    def tenant(self, **fields: Any) -> None:
        with self.db.session(system=True) as session, session.begin():
            session.execute(update(Tenant).where(Tenant.id == self.tenant_id).values(**fields))

    def enrolment(self, campaign_lead_id: int) -> CampaignLead:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            row = session.get(CampaignLead, campaign_lead_id)
            assert row is not None
            return row

    def messages(self, campaign_lead_id: int | None = None) -> list[Message]:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            query = select(Message).order_by(Message.id)
            if campaign_lead_id is not None:
                query = query.where(Message.campaign_lead_id == campaign_lead_id)
            return list(session.scalars(query))

    def events(self, campaign_lead_id: int) -> list[Event]:
        with self.db.session(tenant_id=self.tenant_id, read_only=True) as session:
            return list(
                session.scalars(
                    select(Event).where(Event.campaign_lead_id == campaign_lead_id).order_by(Event.id)
                )
            )


@pytest.fixture
def seed(db: Database) -> Seed:
    tenant_id = make_tenant(db)
    with db.session(system=True) as session, session.begin():
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.playbook = PLAYBOOK
        tenant.postal_address = "1 Main St, Springfield, IL 62701"
        tenant.link_allow_list = ["acme.example"]
        tenant.email_sender = "sales@acme.example"
        session.add(
            SenderVerification(
                tenant_id=tenant_id, kind="domain", value="acme.example", token="seed", verified_at=NOW
            )
        )
        campaign = Campaign(
            tenant_id=tenant_id,
            name="Intro",
            channel="sms",
            status="running",
            system_prompt="Write a friendly intro to Leadflow.",
            model="gpt-4o-mini",
            steps=[{"delay_hours": 0}],
        )
        session.add(campaign)
        session.flush()
        return Seed(db, tenant_id, campaign.id)


@pytest.fixture
def runtime(settings: Settings, db: Database) -> PipelineRuntime:
    return PipelineRuntime.from_settings(settings, db, now=lambda: NOW)


class ScriptedModel(BaseChatModel):
    """A chat model that answers with the given texts in turn and remembers every prompt."""

    replies: list[str]
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    fail_with: Exception | None = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if "TASK: condense-facts" in str(messages[0].content):
            text = "[]"  # not a usable answer: the facts are condensed by rules
        else:
            self.prompts.append(messages)
            if self.fail_with is not None:
                raise self.fail_with
            text = self.replies[min(len(self.prompts) - 1, len(self.replies) - 1)]
        usage = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])


def scripted_runtime(
    db: Database,
    settings: Settings,
    *replies: str,
    senders: dict[str, Any] | None = None,
    gate: Any = None,
    provider: str = "openai",
) -> tuple[PipelineRuntime, ScriptedModel]:
    model = ScriptedModel(replies=list(replies), prompts=[])
    runtime = PipelineRuntime(
        settings=settings,
        models=model,
        senders=senders or senders_from_settings(settings, db),
        now=lambda: NOW,
        provider=provider,
    )
    if gate is not None:
        runtime.gate = gate
    return runtime, model


def openai_runtime(
    db: Database, settings: Settings, server: FakeOpenAI, *, max_retries: int = 0
) -> PipelineRuntime:
    """A runtime whose models are the real ChatOpenAI against the local fake server, at NOW."""
    values = settings.model_dump()
    values.update(llm_provider="openai", openai_api_key="sk-test", openai_base_url=server.base_url,
                  llm_max_retries=max_retries)
    return PipelineRuntime.from_settings(make_settings(**values), db, now=lambda: NOW)
