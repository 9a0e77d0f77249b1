"""The reply agent as a StateGraph of its own: classify -> act -> suggest, for one inbound message.

It reads plain inputs (`ReplyContext`) and returns plain results (`ReplyState`); the job that runs
it (core.inbound.queue) loads the message and stores what it decided. `act` is the one node that
writes: through core.replies and the suppression list, in its own transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, TypedDict, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from core import tracing
from core.db import Database
from core.inbound.classify import SUGGESTED, Classification, ReplyClass
from core.llm.records import ModelCallRecord
from core.pipeline.observed import observed_node
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import CampaignData, TenantData


@dataclass(frozen=True)
class ReplyData:
    """The inbound message the agent works on."""

    id: int
    tenant_id: int
    channel: str  # "sms" | "email"
    from_address: str
    body: str
    received_at: datetime
    subject: str | None = None
    lead_id: int | None = None
    campaign_id: int | None = None


@dataclass(frozen=True)
class ActResult:
    """What `act` did: the actions in words, and what it decided about the message itself."""

    actions: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # merged into classification_detail
    handled: bool = False  # settled by the agent: no person needs to answer it
    assigned_user_id: int | None = None


ActFn = Callable[["ReplyContext", Classification], ActResult]


@dataclass
class ReplyContext:
    """The read-only inputs of one run, given to every node through LangGraph's runtime context."""

    runtime: PipelineRuntime
    db: Database | None
    reply: ReplyData
    tenant: TenantData
    lead: dict[str, Any] | None
    campaign: CampaignData | None  # the campaign the reply answers, when known
    facts: list[dict[str, str]]  # what the lead's research found: grounds the suggested answer
    conversation: list[dict[str, Any]]  # the earlier messages, oldest first
    canary: str
    nonce: str
    now: datetime
    act: ActFn

    @property
    def model(self) -> str:
        """The model the agent calls: the campaign's, else the installation's default."""
        return self.campaign.model if self.campaign else self.runtime.settings.default_model


class ReplyState(TypedDict, total=False):
    classification: str  # a core.inbound.classify.ReplyClass value
    detail: dict[str, Any]  # evidence, date, person, actions, the model's problems
    handled: bool  # no person needs to answer it
    assigned_user_id: int | None  # who it is handed to
    suggested_reply: str | None  # for interested and question, when one passed the guard
    llm_calls: Annotated[list[ModelCallRecord], operator.add]  # become llm_calls rows


def after_act(state: ReplyState) -> Literal["suggest", "__end__"]:
    if "classification" not in state:
        raise RuntimeError("act ran without a classification")
    return "suggest" if ReplyClass(state["classification"]) in SUGGESTED else "__end__"


def build_reply_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    from core.inbound import nodes

    graph = StateGraph(ReplyState, context_schema=ReplyContext)
    graph.add_node("classify", observed_node("reply", "classify", nodes.classify))  # rules, or the model
    graph.add_node("act", observed_node("reply", "act", nodes.act))  # stop, postpone, opt out, hand over
    graph.add_node("suggest", observed_node("reply", "suggest", nodes.suggest))  # a draft answer, guarded
    graph.add_edge(START, "classify")
    graph.add_edge("classify", "act")
    graph.add_conditional_edges("act", after_act)
    graph.add_edge("suggest", END)
    return graph.compile()


@cache
def reply_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled graph, built once per process (compiled graphs are thread-safe; it holds no
    model: the model comes from the run's runtime)."""
    return build_reply_agent()


def run_reply_agent(context: ReplyContext) -> ReplyState:
    """Classify, act and suggest for one reply; the final state says what was decided."""
    reply = context.reply
    attributes = {
        "leadflow.tenant_id": reply.tenant_id,
        "leadflow.inbound_message_id": reply.id,
        "leadflow.channel": reply.channel,
    }
    with tracing.span("reply.run", attributes) as current:
        final = cast(ReplyState, reply_agent().invoke({"llm_calls": []}, context=context))
        if current is not None and final.get("classification"):
            current.set_attribute("leadflow.classification", final["classification"])
        return final
