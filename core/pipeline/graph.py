"""The pipeline as a StateGraph: validate -> research -> compose -> guard -> approval -> send -> finalize."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from core.pipeline import nodes
from core.pipeline.context import PipelineContext
from core.pipeline.finalize import finalize
from core.pipeline.observed import observed_node
from core.pipeline.send import send
from core.pipeline.state import PipelineState

Node = Callable[..., dict[str, Any]]


class UnexpectedRoute(RuntimeError):
    """A router met a state it has no edge for: a bug, not a lead's problem."""


def after_validate(state: PipelineState) -> Literal["research", "send", "finalize"]:
    if state.get("status"):
        return "finalize"
    if state.get("resume_approved"):
        return "send"
    return "research"


def after_research(state: PipelineState) -> Literal["compose", "finalize"]:
    return "finalize" if state.get("status") else "compose"


def after_compose(state: PipelineState) -> Literal["guard", "finalize"]:
    if state.get("status"):
        return "finalize"
    if state.get("draft_body") is None:
        raise UnexpectedRoute("compose ended with neither a draft nor a status")
    return "guard"


def after_guard(state: PipelineState) -> Literal["compose", "approval", "finalize"]:
    if state.get("status"):
        return "finalize"
    if state.get("feedback"):
        return "compose"
    if not (state.get("guard") or {}).get("passed"):
        raise UnexpectedRoute("the guard neither passed the draft nor gave feedback")
    # A preview stops at the checked draft: nothing is held for review or sent.
    return "finalize" if state.get("preview") else "approval"


def after_approval(state: PipelineState) -> Literal["send", "finalize"]:
    return "finalize" if state.get("status") else "send"


@dataclass(frozen=True)
class PipelineNodes:
    """The node functions, each measured and traced; the benchmark swaps in bare no-ops to measure
    the bare graph (so the full pipeline's figure includes what the measuring costs)."""

    validate: Node = observed_node("outreach", "validate", nodes.validate)
    research: Node = observed_node("outreach", "research", nodes.research)
    compose: Node = observed_node("outreach", "compose", nodes.compose)
    guard: Node = observed_node("outreach", "guard", nodes.guard)
    approval: Node = observed_node("outreach", "approval", nodes.approval)
    send: Node = observed_node("outreach", "send", send)
    finalize: Node = observed_node("outreach", "finalize", finalize)


def build_pipeline(
    node_set: PipelineNodes = PipelineNodes(),
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled graph; previews use it too (their finalize writes nothing)."""
    graph = StateGraph(PipelineState, context_schema=PipelineContext)
    graph.add_node("validate", node_set.validate)  # messageable now? (address, suppression, hours)
    graph.add_node("research", node_set.research)  # facts with sources
    graph.add_node("compose", node_set.compose)  # the model writes the draft
    graph.add_node("guard", node_set.guard)  # plain-code checks, one regeneration
    graph.add_node("approval", node_set.approval)  # wait for a reviewer when required
    graph.add_node("send", node_set.send)  # ledger row, then the provider
    graph.add_node("finalize", node_set.finalize)  # outcome, events, costs: one write
    graph.add_edge(START, "validate")
    graph.add_conditional_edges("validate", after_validate)
    graph.add_conditional_edges("research", after_research)
    graph.add_conditional_edges("compose", after_compose)
    graph.add_conditional_edges("guard", after_guard)
    graph.add_conditional_edges("approval", after_approval)
    graph.add_edge("send", "finalize")
    graph.add_edge("finalize", END)
    return graph.compile()


@cache
def compiled_pipeline() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The pipeline every run and preview uses, compiled once (compiled graphs are thread-safe)."""
    return build_pipeline()
