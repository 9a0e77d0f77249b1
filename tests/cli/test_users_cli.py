"""`users reset-password`: the way back in for a user (an owner too) who cannot sign in."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from core.auth import authenticate
from core.cli import app
from core.db import Database
from core.errors import LoginRefused
from core.models import Role
from core.sign_in import SessionEnded, signed_in_user, start_session
from tests.factories import PASSWORD, make_actor, make_tenant


def test_reset_password_prints_a_one_time_password_and_ends_every_session(
    cli: CliRunner, db: Database
) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    session_id = start_session(db, owner, key="k" * 32, lifetime=timedelta(days=1)).session_id
    for _ in range(5):
        with pytest.raises(LoginRefused):
            authenticate(db, "olga", "forgotten password", max_failures=5, lock_minutes=15)
    result = cli.invoke(app, ["users", "reset-password", "--tenant", "acme", "--username", "OLGA", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["username"] == "olga" and len(answer["temporary_password"]) >= 16
    with pytest.raises(SessionEnded):
        signed_in_user(db, session_id)
    with pytest.raises(LoginRefused):
        authenticate(db, "olga", PASSWORD, max_failures=5, lock_minutes=15)
    actor = authenticate(db, "olga", answer["temporary_password"], max_failures=5, lock_minutes=15)
    fresh = start_session(db, actor, key="k" * 32, lifetime=timedelta(days=1))
    assert signed_in_user(db, fresh.session_id).password_change_required


def test_reset_password_of_an_unknown_user_is_one_clear_line(cli: CliRunner, db: Database) -> None:
    make_actor(db, make_tenant(db), Role.owner, "olga")
    result = cli.invoke(app, ["users", "reset-password", "--tenant", "Acme", "--username", "nobody"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: user 'nobody' does not exist in this tenant"


def test_the_same_username_in_two_tenants_is_created_listed_and_reset_per_tenant(
    cli: CliRunner, db: Database
) -> None:
    for tenant in ("Acme", "Globex"):
        assert cli.invoke(app, ["tenants", "create", tenant]).exit_code == 0
        created = cli.invoke(app, ["users", "create", "--tenant", tenant, "--username", "olivia",
                                   "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
        assert created.exit_code == 0, created.output
    again = cli.invoke(app, ["users", "create", "--tenant", "acme", "--username", "Olivia",
                             "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 1
    assert again.stderr == "error: username 'olivia' is taken in this organisation; choose another\n"
    listed = json.loads(cli.invoke(app, ["users", "list", "--tenant", "Globex", "--json"]).stdout)
    assert [u["username"] for u in listed] == ["olivia"]
    result = cli.invoke(app, ["users", "reset-password", "--tenant", "Globex", "--username", "olivia",
                              "--json"])
    temporary = json.loads(result.stdout)["temporary_password"]
    # Globex's olivia has the one-time password now; Acme's keeps hers.
    globex = authenticate(db, "olivia", temporary, max_failures=5, lock_minutes=15, organisation="Globex")
    acme = authenticate(db, "olivia", PASSWORD, max_failures=5, lock_minutes=15, organisation="Acme")
    assert globex.tenant_id != acme.tenant_id
