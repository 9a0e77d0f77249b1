"""`init`, `tenants` and `users`: their output, JSON, and one clear line on errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from core.auth import authenticate
from core.cli import app
from core.config import ROOT
from core.db import Database
from tests.factories import PASSWORD


def test_init_creates_the_schema_from_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = subprocess.run([sys.executable, "-m", "core.cli", "init"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "LEADFLOW_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "database ready" in result.stdout
    from sqlalchemy import create_engine, inspect

    assert "campaign_leads" in inspect(create_engine(url)).get_table_names()


def test_tenants_create_and_list(cli: CliRunner) -> None:
    result = cli.invoke(app, ["tenants", "create", "Acme", "--country", "gb", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"id": 1, "name": "Acme", "default_country": "GB"}
    listed = cli.invoke(app, ["tenants", "list", "--json"])
    assert [t["name"] for t in json.loads(listed.stdout)] == ["Acme"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenants", "create", "Acme"], "already exists"),
        (["tenants", "create", "Other", "--country", "ZZ"], "two-letter ISO code"),
        (["users", "list", "--tenant", "Nope"], "no tenant named 'Nope'"),
    ],
)
def test_errors_are_one_clear_line(cli: CliRunner, args: list[str], message: str) -> None:
    cli.invoke(app, ["tenants", "create", "Acme"])
    result = cli.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_users_create_reads_password_from_stdin(cli: CliRunner, db: Database) -> None:
    cli.invoke(app, ["tenants", "create", "Acme"])
    result = cli.invoke(
        app, ["users", "create", "--tenant", "acme", "--username", "Alice", "--role", "admin",
              "--password-stdin", "--json"], input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"id": 1, "username": "alice", "role": "admin"}
    actor = authenticate(db, "alice", PASSWORD, max_failures=5, lock_minutes=15)
    assert actor.role.value == "admin"
    listed = json.loads(cli.invoke(app, ["users", "list", "--tenant", "Acme", "--json"]).stdout)
    assert [(u["username"], u["role"], u["active"]) for u in listed] == [("alice", "admin", True)]


@pytest.mark.parametrize(
    ("extra", "stdin", "code", "message"),
    [
        (["--role", "boss"], PASSWORD, 1, "role 'boss' is not one of"),
        (["--role", "admin"], "short", 1, "at least 10 characters"),
        (["--role", "admin"], "", 1, "no password on standard input"),
    ],
)
def test_users_create_errors(cli: CliRunner, extra: list[str], stdin: str, code: int,
                             message: str) -> None:
    cli.invoke(app, ["tenants", "create", "Acme"])
    result = cli.invoke(app, ["users", "create", "--tenant", "Acme", "--username", "bob",
                              "--password-stdin", *extra], input=stdin)
    assert result.exit_code == code
    assert message in result.stderr


def test_users_create_requires_password_stdin(cli: CliRunner) -> None:
    cli.invoke(app, ["tenants", "create", "Acme"])
    result = cli.invoke(app, ["users", "create", "--tenant", "Acme", "--username", "bob",
                              "--role", "admin"])
    assert result.exit_code == 2
    assert "--password-stdin" in result.stderr
