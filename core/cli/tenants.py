"""`tenants create|list|update`."""

from __future__ import annotations

import typer

from core.cli.base import database, print_json, tenant_actor, user_errors
from core.text import plural

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@user_errors
def create(
    name: str = typer.Argument(..., help="The tenant's name, unique."),
    country: str = typer.Option("US", help="Default country for phone numbers (ISO code)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from core.tenants import create_tenant

    with database() as db:
        tenant = create_tenant(db, name, country)
    if as_json:
        print_json({"id": tenant.id, "name": tenant.name, "default_country": tenant.default_country})
    else:
        typer.echo(f"created tenant {tenant.id}: {tenant.name} ({tenant.default_country})")


@app.command("list")
@user_errors
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    from core.tenants import list_tenants

    with database() as db:
        tenants = list_tenants(db)
    if as_json:
        print_json(tenants)
        return
    if not tenants:
        typer.echo("no tenants yet: python -m core.cli tenants create NAME")
    for t in tenants:
        typer.echo(f"{t.id:>5}  {t.name:<30} {t.default_country}  {plural(t.users, 'user')}")


@app.command("update")
@user_errors
def update(
    name: str = typer.Argument(..., help="The tenant's name."),
    sms_sender: str | None = typer.Option(
        None, "--sms-sender", help="SMS sender: a number (+14155550100) or an alphanumeric id; '' clears it."
    ),
    email_sender: str | None = typer.Option(
        None, "--email-sender", help="The From address of the tenant's emails; '' clears it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the tenant's sender ids as JSON."),
) -> None:
    """Set a tenant's sender ids, checked as the Admin page checks them (and audited)."""
    from core.admin import update_tenant_settings

    changes = {
        key: value
        for key, value in (("sms_sender_id", sms_sender), ("email_sender", email_sender))
        if value is not None
    }
    if not changes:
        raise typer.BadParameter("give --sms-sender, --email-sender or both")
    with database() as db:
        saved = update_tenant_settings(db, tenant_actor(db, name), changes)
    senders = {"sms_sender": saved.sms_sender_id, "email_sender": saved.email_sender}
    if as_json:
        print_json({"tenant": name, **senders})
    else:
        typer.echo(
            f"{name}: SMS sender {saved.sms_sender_id or '(none)'}, "
            f"email sender {saved.email_sender or '(none)'}"
        )
