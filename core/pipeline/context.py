"""The read-only inputs of one run, given to every node through LangGraph's runtime context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from core.db import Database
from core.pipeline.run_inputs import address_of
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import CampaignData, EnrolmentData, Mode, PipelineEvent, TenantData


@dataclass
class PipelineContext:
    """The read-only inputs of one run, given to every node through LangGraph's runtime context."""

    runtime: PipelineRuntime
    db: Database | None
    mode: Mode
    lease_owner: str
    tenant: TenantData
    campaign: CampaignData
    lead: dict[str, Any]
    enrolment: EnrolmentData
    canary: str
    nonce: str

    @property
    def now(self) -> datetime:
        return self.runtime.now()

    @property
    def channel(self) -> str:
        return self.campaign.channel

    @property
    def address(self) -> str | None:
        return address_of(self.lead, self.campaign.channel)


Ctx = Runtime[PipelineContext]


def event(
    ctx: PipelineContext, node: str, message: str, *, level: str = "info", **data: Any
) -> PipelineEvent:
    return {"node": node, "level": level, "message": message, "data": data, "created_at": ctx.now}

