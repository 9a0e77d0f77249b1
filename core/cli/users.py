"""`users create|list|reset-password`."""

from __future__ import annotations

import typer

from core.cli.base import database, print_json, read_password_stdin, tenant_actor, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@user_errors
def create(
    tenant: str = typer.Option(..., help="The tenant's name."),
    username: str = typer.Option(..., help="Login name, unique within the tenant."),
    role: str = typer.Option(..., help="owner, admin, manager or analyst."),
    name: str = typer.Option("", help="Display name (defaults to the username)."),
    email: str = typer.Option("", help="Email address."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (required)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    if not password_stdin:
        typer.echo("error: pass --password-stdin and pipe the password in", err=True)
        raise typer.Exit(2)
    password = read_password_stdin()
    from core.auth import create_user

    with database() as db:
        user = create_user(
            db, tenant_actor(db, tenant), username=username, name=name or username, email=email, role=role,
            password=password,
        )
    if as_json:
        print_json({"id": user.id, "username": user.username, "role": user.role})
    else:
        typer.echo(f"created {user.role} '{user.username}' (id {user.id}) in {tenant}")


@app.command("list")
@user_errors
def list_(
    tenant: str = typer.Option(..., help="The tenant's name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    from core.auth import list_users

    with database() as db:
        users = list_users(db, tenant_actor(db, tenant))
    if as_json:
        print_json(
            [
                {
                    "id": u.id,
                    "username": u.username,
                    "name": u.name,
                    "email": u.email,
                    "role": u.role,
                    "active": u.active,
                }
                for u in users
            ]
        )
        return
    for u in users:
        state = "active" if u.active else "inactive"
        typer.echo(f"{u.id:>5}  {u.username:<24} {u.role:<8} {state}  {u.name}")


@app.command("reset-password")
@user_errors
def reset_password_(
    tenant: str = typer.Option(..., help="The tenant's name."),
    username: str = typer.Option(..., help="The user whose password is reset."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Give a user a one-time password (printed once), ending every sign-in of theirs; they choose
    their own at the next sign-in. For an owner who is locked out or forgot theirs."""
    from core.auth import reset_password, user_id_by_username
    from core.permissions import system_actor
    from core.tenants import tenant_id_by_name

    with database() as db:
        tenant_id = tenant_id_by_name(db, tenant)
        reset = reset_password(db, system_actor(tenant_id), user_id_by_username(db, tenant_id, username))
    if as_json:
        print_json({"username": reset.user.username, "temporary_password": reset.temporary_password})
    else:
        typer.echo(
            f"one-time password for '{reset.user.username}' (shown once; they choose their "
            f"own at the next sign-in): {reset.temporary_password}"
        )
