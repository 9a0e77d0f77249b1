"""Dependencies point one way: core imports no entry layer (pages, jobs, api) and no web framework;
the api imports neither the dashboard nor the job runner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "core": {"pages", "jobs", "api", "app", "streamlit", "fastapi", "starlette", "uvicorn"},
    "api": {"pages", "jobs", "app", "streamlit"},
    "jobs": {"pages", "api", "app", "streamlit"},
}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_it_may(layer: str) -> None:
    offences = {
        str(path.relative_to(ROOT)): sorted(_imported_roots(path) & FORBIDDEN[layer])
        for path in sorted((ROOT / layer).rglob("*.py"))
    }
    assert {path: found for path, found in offences.items() if found} == {}


def test_the_check_sees_an_offence(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import streamlit as st\nfrom pages.common import md\nfrom .sibling import x\n")
    assert _imported_roots(module) == {"streamlit", "pages"}
