"""Campaigns, their life-cycle actions, cost estimates, previews and enrolments over the wire.

Each response shape is filled from a core value (`CampaignView`, `CostEstimate`, `PreviewResult`,
`EnrolmentRow`, `EnrolmentTrace`), never from a table row; money is `Money`, times `UtcDateTime`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.v1.schemas import Money, UtcDateTime
from core.campaign_rules import EDITABLE_BY_STATUS
from core.campaign_shape import CampaignView
from core.errors import ValidationError
from core.lifecycle import allowed_actions
from core.money import usd_to_microusd
from core.monitor import EnrolmentRow, EnrolmentTrace
from core.pipeline.estimate import CostEstimate


class Step(BaseModel):
    delay_hours: float = Field(0, description="Hours after the step before (the first: at the start)")
    prompt: str | None = Field(None, description="Added to the campaign prompt for this step")


class Variant(BaseModel):
    name: str
    prompt: str = ""
    weight: int | None = Field(None, description="0 deals it no new leads; null: an even share")


class SendWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str | None = Field(None, examples=["09:00"])
    end: str | None = Field(None, examples=["17:00"])
    weekdays_only: bool = False


class MoneyIn(BaseModel):
    """An amount a caller gives: dollars as a decimal string, in USD (the currency of every price)."""

    model_config = ConfigDict(extra="forbid")

    amount: str = Field(examples=["12.50"])
    currency: Literal["USD"] = "USD"

    @field_validator("amount")
    @classmethod
    def _dollars(cls, amount: str) -> str:
        try:
            usd_to_microusd(amount)
        except ValidationError as error:
            raise ValueError(str(error)) from None
        return amount


class CampaignFields(BaseModel):
    """The fields a person edits; which may change depends on the status (see `editable_fields`)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    system_prompt: str | None = None
    model: str | None = None
    temperature: float | None = None
    audience: dict[str, list[Any]] | None = Field(
        None, description="Filters: tags, import_ids, industries, countries", examples=[{"tags": ["vip"]}]
    )
    steps: list[Step] | None = None
    variants: list[Variant] | None = None
    research_web: bool | None = None
    max_sms_segments: int | None = None
    send_window: SendWindow | None = None
    sends_per_minute: int | None = None
    budget_cap: MoneyIn | None = Field(None, description="The most the campaign may spend; null: no cap")
    approval_required: bool | None = None
    scheduled_at: datetime | None = None
    reply_stop_classes: list[str] | None = None

    def core_values(self) -> dict[str, Any]:
        """The fields the caller sent, named and typed as core's campaign services take them."""
        values = self.model_dump(exclude_unset=True, exclude={"budget_cap"})
        if "budget_cap" in self.model_fields_set:
            values["budget_cap_microusd"] = microusd_of(self.budget_cap)
        return values


class CampaignCreate(CampaignFields):
    name: str
    channel: str = Field(description="sms or email", examples=["sms"])


class CampaignUpdate(CampaignFields):
    name: str | None = None
    channel: str | None = None


def microusd_of(money: MoneyIn | None) -> int | None:
    """A Money body as micro-dollars (the core unit), read by the dashboard's own parser."""
    return None if money is None else usd_to_microusd(money.amount)


class Campaign(BaseModel):
    id: int
    name: str
    description: str | None
    channel: str
    status: str
    status_reason: str | None
    allowed_actions: list[str] = Field(description="The life-cycle actions the status allows")
    editable_fields: list[str] = Field(description="The fields a PATCH may change in this status")
    system_prompt: str
    model: str
    temperature: float
    steps: list[Step]
    variants: list[Variant]
    audience: dict[str, Any]
    research_web: bool
    max_sms_segments: int
    send_window: dict[str, Any] | None
    sends_per_minute: int | None
    approval_required: bool
    budget_cap: Money | None
    spent: Money
    reply_stop_classes: list[str]
    scheduled_at: UtcDateTime | None
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    completed_at: UtcDateTime | None
    archived_at: UtcDateTime | None

    @classmethod
    def of(cls, view: CampaignView) -> Self:
        spent = Money.of_microusd(view.spent_microusd or 0)
        assert spent is not None
        return cls(
            id=view.id,
            name=view.name,
            description=view.description,
            channel=view.channel,
            status=view.status,
            status_reason=view.status_reason,
            allowed_actions=sorted(allowed_actions(view.status)),
            editable_fields=sorted(EDITABLE_BY_STATUS.get(view.status, frozenset())),
            system_prompt=view.system_prompt,
            model=view.model,
            temperature=view.temperature,
            steps=[Step(**s.as_json()) for s in view.steps],
            variants=[Variant(**v.as_json()) for v in view.variants],
            audience=dict(view.audience or {}),
            research_web=view.research_web,
            max_sms_segments=view.max_sms_segments,
            send_window=view.send_window,
            sends_per_minute=view.sends_per_minute,
            approval_required=view.approval_required,
            budget_cap=Money.of_microusd(view.budget_cap_microusd),
            spent=spent,
            reply_stop_classes=list(view.reply_stop_classes),
            scheduled_at=view.scheduled_at,
            created_at=view.created_at,
            started_at=view.started_at,
            completed_at=view.completed_at,
            archived_at=view.archived_at,
        )


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime = Field(
        description="When to start, ISO 8601 with its offset", examples=["2026-12-01T09:00:00Z"]
    )


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, description="Shown with the paused status")


class Estimate(BaseModel):
    leads: int
    leads_exact: bool = Field(description="False: the audience was estimated from a sample")
    steps: int
    model: str
    calls_per_lead: int
    input_tokens_per_lead: int
    output_tokens_per_lead: int
    cost_per_lead: Money
    total: Money
    max_total: Money = Field(description="Every draft regenerated once: the most the guard can add")
    margin: float = Field(description="Relative 95% margin of the total; 0 when counted exactly")
    sample_leads: int
    priced_leads: int

    @classmethod
    def of(cls, estimate: CostEstimate) -> Self:
        def money(microusd: int) -> Money:
            value = Money.of_microusd(microusd)
            assert value is not None
            return value

        return cls(
            leads=estimate.leads,
            leads_exact=estimate.sample_leads == 0,
            steps=estimate.steps,
            model=estimate.model,
            calls_per_lead=estimate.calls_per_lead,
            input_tokens_per_lead=estimate.input_tokens_per_lead,
            output_tokens_per_lead=estimate.output_tokens_per_lead,
            cost_per_lead=money(estimate.cost_per_lead_microusd),
            total=money(estimate.total_microusd),
            max_total=money(estimate.max_total_microusd),
            margin=estimate.margin,
            sample_leads=estimate.sample_leads,
            priced_leads=estimate.priced_leads,
        )


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_id: int
    step: int = Field(0, ge=0, description="0 is the first touch")
    variant: str | None = Field(None, description="An A/B variant's name; null: the lead's own")


class Preview(BaseModel):
    status: str = Field(description="ready, or the status the lead would end in")
    reason: str | None
    step: int
    variant: str
    facts: list[dict[str, Any]]
    subject: str | None
    body: str | None
    segments: int
    encoding: str
    guard_passed: bool
    problems: list[str]
    cost: Money
    input_tokens: int
    output_tokens: int
    instructions: str | None = Field(description="The campaign's instructions for this lead")


class Enrolment(BaseModel):
    id: int
    campaign_id: int
    lead_id: int
    lead_name: str
    status: str
    status_reason: str | None
    error: str | None
    step: int
    variant: str
    attempts: int
    trace_id: str | None
    next_action_at: UtcDateTime | None
    cost: Money
    replied_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    completed_at: UtcDateTime | None

    @classmethod
    def of(cls, row: EnrolmentRow) -> Self:
        cost = Money.of_microusd(row.cost_microusd)
        assert cost is not None
        return cls(
            id=row.campaign_lead_id,
            campaign_id=row.campaign_id,
            lead_id=row.lead_id,
            lead_name=row.lead_name,
            status=row.status,
            status_reason=row.status_reason,
            error=row.error,
            step=row.step,
            variant=row.variant,
            attempts=row.attempts,
            trace_id=row.trace_id,
            next_action_at=row.next_action_at,
            cost=cost,
            replied_at=row.replied_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
        )


class TraceEvent(BaseModel):
    id: int
    trace_id: str | None
    node: str
    level: str
    message: str
    created_at: UtcDateTime


class TraceMessage(BaseModel):
    step: int
    to: str
    subject: str | None
    body: str
    status: str
    provider: str
    error: str | None
    sent_at: UtcDateTime | None


class TraceCall(BaseModel):
    node: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: Money
    latency_ms: int
    error: str | None
    created_at: UtcDateTime


class EnrolmentDetail(BaseModel):
    """One enrolment as the Run monitor's drill-down shows it: its state and node-by-node log."""

    id: int
    campaign_id: int
    lead_id: int
    lead_name: str
    company: str | None
    status: str
    status_reason: str | None
    error: str | None
    step: int
    variant: str
    trace_id: str | None = Field(description="The current run's trace id (the tracing backend's)")
    trace_ids: list[str] = Field(description="Every run's trace id, oldest first")
    draft_subject: str | None
    draft_body: str | None
    guard: dict[str, Any]
    facts: list[dict[str, Any]]
    cost: Money
    input_tokens: int
    output_tokens: int
    events: list[TraceEvent]
    messages: list[TraceMessage]
    calls: list[TraceCall]

    @classmethod
    def of(cls, trace: EnrolmentTrace) -> Self:
        def money(microusd: int) -> Money:
            value = Money.of_microusd(microusd)
            assert value is not None
            return value

        return cls(
            id=trace.campaign_lead_id,
            campaign_id=trace.campaign_id,
            lead_id=trace.lead_id,
            lead_name=trace.lead_name,
            company=trace.company,
            status=trace.status,
            status_reason=trace.status_reason,
            error=trace.error,
            step=trace.step,
            variant=trace.variant,
            trace_id=trace.trace_id,
            trace_ids=trace.trace_ids,
            draft_subject=trace.draft_subject,
            draft_body=trace.draft_body,
            guard=trace.guard,
            facts=trace.facts,
            cost=money(trace.cost_microusd),
            input_tokens=trace.input_tokens,
            output_tokens=trace.output_tokens,
            events=[
                TraceEvent(
                    id=e.id,
                    trace_id=e.trace_id,
                    node=e.node,
                    level=e.level,
                    message=e.message,
                    created_at=e.created_at,
                )
                for e in trace.events
            ],
            messages=[
                TraceMessage(
                    step=m.step,
                    to=m.to_address,
                    subject=m.subject,
                    body=m.body,
                    status=m.status,
                    provider=m.provider,
                    error=m.error,
                    sent_at=m.sent_at,
                )
                for m in trace.messages
            ],
            calls=[
                TraceCall(
                    node=c.node,
                    model=c.model,
                    input_tokens=c.input_tokens,
                    output_tokens=c.output_tokens,
                    cost=money(c.cost_microusd),
                    latency_ms=c.latency_ms,
                    error=c.error,
                    created_at=c.created_at,
                )
                for c in trace.calls
            ],
        )
