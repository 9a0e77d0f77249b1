"""The dashboard opens without the model stack: LangChain, LangGraph and the OpenAI client load
only for a preview (and in the runner), because importing them takes longer than any page
takes to render.

Checked in a new interpreter, where nothing else has imported them yet.
"""

from __future__ import annotations

import json
import subprocess
import sys

from core.config import ROOT

MODEL_STACK = ("langchain_core", "langchain_openai", "langgraph", "openai")

# Every module of the pages that is not itself a page script (those run when imported), what
# app.py imports, and the core services the pages call.
PROBE = """
import importlib, json, pkgutil, sys
import pages
names = ["pages.common", "pages.auth", "pages.registry", "jobs.embedded", "core.auth",
         "core.leads.readers"]
for package in ("admin_sections", "campaign_sections", "inbox_sections", "lead_sections",
                "monitor_sections", "review_sections", "widgets"):
    module = importlib.import_module(f"pages.{package}")
    names += [f"pages.{package}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
names += sys.argv[2:]
for name in names:
    importlib.import_module(name)
stack = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"imported": len(names), "stack": stack}))
"""


def _probe(*extra: str) -> dict[str, object]:
    command = [sys.executable, "-c", PROBE, json.dumps(MODEL_STACK), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_the_dashboard_modules_do_not_import_the_model_stack() -> None:
    answer = _probe()
    assert answer["imported"] > 20  # the sections were found, not an empty list
    assert answer["stack"] == []


def test_the_probe_sees_the_stack_when_something_imports_it() -> None:
    assert _probe("core.pipeline.service")["stack"] == sorted(MODEL_STACK)
