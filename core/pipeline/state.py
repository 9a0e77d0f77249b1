"""The typed state of one pipeline run and the read-only inputs it works from."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from core.campaign_shape import CampaignData
from core.llm.records import ModelCallRecord

__all__ = ["CampaignData", "EnrolmentData", "Mode", "PipelineEvent", "PipelineState", "TenantData"]

Mode = Literal["run", "preview"]


@dataclass(frozen=True)
class TenantData:
    """The tenant settings the pipeline needs."""

    id: int
    name: str
    default_country: str
    send_window_start: str
    send_window_end: str
    weekdays_only: bool
    sms_sender_id: str | None
    email_sender: str | None
    postal_address: str | None
    link_allow_list: tuple[str, ...]
    playbook: dict[str, Any]
    price_overrides: dict[str, Any]
    time_zone: str | None = None  # the tenant's own clock; None: its country's main zone
    contact_cap_per_day: int | None = None  # messages per lead per rolling day, all campaigns
    contact_cap_per_week: int | None = None
    skip_public_holidays: bool = False
    holiday_country: str | None = None  # the calendar for holidays; None: the recipient's country

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The `tenants` columns a run reads: the fields themselves name them."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TenantData:
        """From a `Tenant` row's values by column name (JSON columns may hold None)."""
        return cls(**{
            **{name: values[name] for name in cls.field_names()},
            "link_allow_list": tuple(values["link_allow_list"] or ()),
            "playbook": dict(values["playbook"] or {}),
            "price_overrides": dict(values["price_overrides"] or {}),
        })


@dataclass(frozen=True)
class EnrolmentData:
    """The campaign_leads row as it was when the run began (id None in a preview)."""

    id: int | None
    step: int
    variant: str
    attempts: int = 0
    approved_at: datetime | None = None
    draft_subject: str | None = None
    draft_body: str | None = None
    research: list[Any] = field(default_factory=list)
    guard_result: dict[str, Any] = field(default_factory=dict)
    replied_at: datetime | None = None
    trace_id: str | None = None
    earlier_messages: list[dict[str, Any]] = field(default_factory=list)
    suppression: str | None = None  # the address's suppression reason at load time


class PipelineEvent(TypedDict):
    node: str
    level: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class PipelineState(TypedDict, total=False):
    """Everything a run learns as it goes; nodes return the keys they change."""

    trace_id: str  # shared by every event and log line of this run of this lead
    preview: bool  # a preview: stop after the guard, write nothing
    facts: list[dict[str, str]]  # research facts, each {"fact": ..., "source": ...}
    draft_subject: str | None  # email subject (None for SMS)
    draft_body: str | None  # the draft as composed, then as cleaned by the guard
    guard: dict[str, Any]  # the guard's verdict: passed, problems, segments, encoding
    compose_attempts: int  # how many drafts were composed (at most 2: one regeneration)
    feedback: str | None  # the guard's problems, given to the next compose
    resume_approved: bool  # a reviewer approved this step's draft: go straight to send
    status: str | None  # the status the enrolment ends in, once decided (campaign_leads.status)
    reason: str | None  # why, for people (status_reason / error)
    next_action_at: datetime | None  # when a deferred or pending enrolment is due again
    message_id: int | None  # the ledger row written by send
    message_status: str | None  # what the ledger row must become: sent, failed, unknown
    message_error: str | None
    provider_message_id: str | None
    sent_at: datetime | None
    suppress: dict[str, str] | None  # an address to add to the suppression list, with its reason
    pause_campaign: str | None  # a provider refused the account: the campaign pauses, with this reason
    provider_failure: str | None  # why the run's last provider call failed (counts towards a pause)
    provider_ok: bool  # the run's last provider call succeeded (the failures in a row start again)
    events: Annotated[list[PipelineEvent], operator.add]  # the per-lead log, written at the end
    llm_calls: Annotated[list[ModelCallRecord], operator.add]  # every model call, for llm_calls
