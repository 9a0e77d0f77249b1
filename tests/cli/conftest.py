"""CLI tests run the Typer app in-process against the test database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOW_MIGRATE_ON_START", "false")
    return CliRunner()
