"""`messages list --campaign ID`: the send ledger of a campaign."""

from __future__ import annotations

import typer

from core.cli.base import campaign_actor, database, print_json, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("list")
@user_errors
def list_(
    campaign: int = typer.Option(..., "--campaign", help="The campaign's id."),
    status: str | None = typer.Option(None, help="Only messages in this status."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    from core.campaigns import campaign_messages

    with database() as db:
        messages = campaign_messages(db, campaign_actor(db, campaign), campaign, status=status)
    if as_json:
        print_json([{"lead_id": m.lead_id, "to": m.to, "step": m.step, "status": m.status,
                     "body": m.body} for m in messages])
        return
    for m in messages:
        typer.echo(f"{m.id:>7}  lead {m.lead_id or 'erased':<7} step {m.step}  {m.status:<9} {m.to}")
