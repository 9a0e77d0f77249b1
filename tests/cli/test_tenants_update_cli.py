"""`tenants update`: a tenant's sender ids from the command line, checked as the Admin page checks them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.cli import app
from core.db import Database
from core.inbound.store import tenant_for_sms_number
from core.models import AuditLog, Tenant
from tests.factories import make_tenant


def _tenant(db: Database, tenant_id: int) -> Tenant:
    with db.session(system=True) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant


def test_update_sets_both_senders_normalised_and_audited(cli: CliRunner, db: Database) -> None:
    acme = make_tenant(db, "Acme")
    result = cli.invoke(app, ["tenants", "update", "acme", "--sms-sender", "(415) 555-0100",
                              "--email-sender", "Sales@Acme.example", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tenant": "acme", "sms_sender": "+14155550100",
                                         "email_sender": "sales@acme.example"}
    tenant = _tenant(db, acme)
    assert (tenant.sms_sender_id, tenant.sms_sender_key) == ("+14155550100", "+14155550100")
    # The inbound webhook finds the tenant by the number set here.
    assert tenant_for_sms_number(db, "+14155550100") == acme
    with db.session(tenant_id=acme) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "tenant_settings")).one()
    assert audit.details["sms_sender_id"] == {"from": None, "to": "+14155550100"}


def test_update_one_sender_leaves_the_other(cli: CliRunner, db: Database) -> None:
    acme = make_tenant(db, "Acme")
    cli.invoke(app, ["tenants", "update", "Acme", "--sms-sender", "+14155550100",
                     "--email-sender", "a@acme.example"])
    result = cli.invoke(app, ["tenants", "update", "Acme", "--email-sender", "b@acme.example"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Acme: SMS sender +14155550100, email sender b@acme.example"
    assert _tenant(db, acme).sms_sender_id == "+14155550100"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sms-sender", "+1 234"], "not a valid phone number"),
        (["--sms-sender", "+14155550199"], "already used by another tenant"),
        (["--email-sender", "not an address"], "email"),
    ],
)
def test_bad_senders_are_one_clear_line(cli: CliRunner, db: Database, args: list[str], message: str) -> None:
    make_tenant(db, "Acme")
    make_tenant(db, "Other")
    cli.invoke(app, ["tenants", "update", "Other", "--sms-sender", "+14155550199"])
    result = cli.invoke(app, ["tenants", "update", "Acme", *args])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_update_needs_a_sender_and_a_known_tenant(cli: CliRunner, db: Database) -> None:
    make_tenant(db, "Acme")
    assert cli.invoke(app, ["tenants", "update", "Acme"]).exit_code == 2
    missing = cli.invoke(app, ["tenants", "update", "Nope", "--sms-sender", "+14155550100"])
    assert missing.exit_code == 1 and "no tenant named 'Nope'" in missing.stderr
