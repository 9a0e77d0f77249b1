"""`suppressions import`: lists of phones or emails that must never be messaged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli.base import database, print_json, tenant_actor, user_errors
from core.text import plural

app = typer.Typer(no_args_is_help=True)


@app.command("import")
@user_errors
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                help="A .csv or .xlsx list of phones or emails.")],
    tenant: Annotated[str, typer.Option(help="The tenant's name.")],
    channel: Annotated[str, typer.Option(help="sms (phones) or email.")],
    reason: Annotated[str, typer.Option(help="stop, unsubscribe, bounce or manual.")] = "manual",
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    from core.leads.importer import reject_message
    from core.suppressions import import_suppressions

    with database() as db:
        summary = import_suppressions(
            db, tenant_actor(db, tenant), file_name=file.name,
            data=file.read_bytes(), channel=channel, reason=reason,
        )
    if as_json:
        print_json(summary.counts())
        return
    typer.echo(f"{plural(summary.rows, 'row')}: {summary.added} suppressed, {summary.already} already "
               f"suppressed, {summary.rejected} rejected")
    for reject in summary.rejects[:20]:
        typer.echo(f"  {reject_message(reject)}")
