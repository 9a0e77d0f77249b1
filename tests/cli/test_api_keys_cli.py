"""`api-keys create|list|revoke`: the same service as Admin and the API, from the command line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.api_keys import api_key_caller
from core.api_tokens import CredentialRefused
from core.cli import app
from core.db import Database
from core.models import ApiKey, AuditLog, Role
from tests.factories import make_tenant


def test_create_prints_the_key_once_and_it_works(cli: CliRunner, db: Database) -> None:
    acme = make_tenant(db, "Acme")
    result = cli.invoke(
        app, ["api-keys", "create", "acme", "--name", "CRM sync", "--role", "manager", "--expires-days", "30"]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("lf_") and "not shown again" in result.stdout
    caller = api_key_caller(db, secret)
    assert (caller.actor.tenant_id, caller.actor.role) == (acme, Role.manager)
    listed = cli.invoke(app, ["api-keys", "list", "acme"])
    assert listed.exit_code == 0, listed.output
    assert "CRM sync" in listed.stdout and "active" in listed.stdout and secret not in listed.stdout
    with db.session(tenant_id=acme, read_only=True) as session:
        assert session.scalars(select(AuditLog.action).where(AuditLog.entity == "api_key")).all() == [
            "create"
        ]


def test_revoke_by_prefix(cli: CliRunner, db: Database) -> None:
    make_tenant(db, "Acme")
    created = json.loads(
        cli.invoke(app, ["api-keys", "create", "Acme", "--name", "Old", "--role", "admin", "--json"]).stdout
    )
    assert created["key"].startswith(f"lf_{created['prefix']}_")
    result = cli.invoke(app, ["api-keys", "revoke", "Acme", created["prefix"]])
    assert result.exit_code == 0, result.output
    assert "revoked" in result.stdout
    with pytest.raises(CredentialRefused, match="revoked"):
        api_key_caller(db, created["key"])
    listed = json.loads(cli.invoke(app, ["api-keys", "list", "Acme", "--json"]).stdout)
    assert [key["revoked"] for key in listed] == [True]


def test_errors_are_one_line(cli: CliRunner, db: Database) -> None:
    make_tenant(db, "Acme")
    bad_role = cli.invoke(app, ["api-keys", "create", "Acme", "--name", "X", "--role", "root"])
    assert bad_role.exit_code == 1
    assert "role 'root' is not one of" in bad_role.stderr
    unknown = cli.invoke(app, ["api-keys", "revoke", "Acme", "000000000000"])
    assert unknown.exit_code == 1 and "does not exist" in unknown.stderr
    with db.session(system=True, read_only=True) as session:
        assert session.scalars(select(ApiKey)).all() == []
