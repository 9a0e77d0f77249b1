"""A graph node measured and traced: its duration in the node histogram, a span when tracing is on.

The graphs wrap their nodes once, when they are built; the histogram's child for the node is
looked up then, so a call costs two clock reads and one observation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from time import perf_counter
from typing import Any

from core import tracing
from core.metrics import PIPELINE_NODE_SECONDS

Node = Callable[..., dict[str, Any]]


def observed_node(graph: str, name: str, node: Node) -> Node:
    """`node` (taking the state and LangGraph's runtime) with its duration and span recorded."""
    seconds = PIPELINE_NODE_SECONDS.labels(graph, name)
    span_name = f"{graph}.{name}"
    attributes = {"leadflow.graph": graph, "leadflow.node": name}

    @wraps(node)
    def run(state: Any, runtime: Any) -> dict[str, Any]:
        started = perf_counter()
        try:
            if not tracing.active():
                return node(state, runtime)
            with tracing.span(span_name, attributes) as current:
                result = node(state, runtime)
                if current is not None and isinstance(result, dict) and result.get("status"):
                    current.set_attribute("leadflow.status", str(result["status"]))
                return result
        finally:
            seconds.observe(perf_counter() - started)

    return run
