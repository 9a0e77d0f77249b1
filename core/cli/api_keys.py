"""`api-keys create|list|revoke`: a tenant's API keys for machines, as Admin and the API manage them."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli.base import database, print_json, tenant_actor, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@user_errors
def create(
    tenant: Annotated[str, typer.Argument(help="The tenant's name.")],
    name: Annotated[str, typer.Option(help="What uses the key, e.g. 'CRM sync'.")],
    role: Annotated[str, typer.Option(help="owner, admin, manager or analyst: what the key may do.")],
    expires_days: Annotated[
        float | None, typer.Option(help="Days until the key stops working; unset: until revoked.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the key and its details as JSON.")] = False,
) -> None:
    """Create a key and print it: it is shown this once and stored only as a hash."""
    from core.api_keys import create_api_key

    with database() as db:
        created = create_api_key(
            db, tenant_actor(db, tenant), name=name, role=role, expires_days=expires_days
        )
    if as_json:
        print_json({"key": created.secret, **vars(created.key)})
        return
    typer.echo(
        f"created API key {created.key.prefix} ({created.key.name}, {created.key.role}); store it now, "
        "it is not shown again:"
    )
    typer.echo(created.secret)


@app.command("list")
@user_errors
def list_(
    tenant: Annotated[str, typer.Argument(help="The tenant's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The tenant's keys, newest first (never their secrets)."""
    from core.api_keys import key_state, list_api_keys

    with database() as db:
        keys = list_api_keys(db, tenant_actor(db, tenant))
    if as_json:
        print_json([{**vars(key), "revoked": key.revoked} for key in keys])
        return
    if not keys:
        typer.echo(f"no API keys yet: python -m core.cli api-keys create {tenant!r} --name NAME --role ROLE")
    for key in keys:
        state = key_state(key)
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never used"
        expires = key.expires_at.strftime("%Y-%m-%d") if key.expires_at else "no expiry"
        typer.echo(f"{key.prefix}  {key.name:<30} {key.role:<8} {state:<8} {used:<16}  {expires}")


@app.command("revoke")
@user_errors
def revoke(
    tenant: Annotated[str, typer.Argument(help="The tenant's name.")],
    prefix: Annotated[str, typer.Argument(help="The key's prefix (as `list` shows it), or the whole key.")],
) -> None:
    """Revoke a key: every request with it is refused from now on."""
    from core.api_keys import revoke_api_key

    with database() as db:
        key = revoke_api_key(db, tenant_actor(db, tenant), prefix=prefix)
    typer.echo(f"revoked API key {key.prefix} ({key.name})")
