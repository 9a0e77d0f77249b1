"""`leads reply --tenant NAME --phone P`: record that a lead replied (stops its sequences)."""

from __future__ import annotations

import typer

from core.cli.base import database, print_json, tenant_actor, user_errors
from core.text import plural


@user_errors
def reply(
    tenant: str = typer.Option(..., help="The tenant's name."),
    phone: str | None = typer.Option(None, help="The lead's phone number."),
    email: str | None = typer.Option(None, help="The lead's email address."),
    stop: bool = typer.Option(False, "--stop", help="The reply was STOP: opt the lead out."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record a reply from a lead: its follow-ups stop."""
    from core.replies import record_reply

    with database() as db:
        recorded = record_reply(db, tenant_actor(db, tenant), phone=phone, email=email, stop=stop)
    if as_json:
        print_json(recorded)
    else:
        typer.echo(f"reply recorded for lead {recorded.lead_id}: "
                   f"{plural(recorded.sequences_stopped, 'sequence')} stopped"
                   + (", opted out" if recorded.opted_out else ""))


def register(leads_app: typer.Typer) -> None:
    """Add `reply` to the `leads` command group."""
    leads_app.command("reply")(reply)
