"""`tenants create|list`."""

from __future__ import annotations

import typer

from core.cli.base import database, print_json, user_errors
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
