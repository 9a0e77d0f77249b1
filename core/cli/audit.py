"""`audit export`: a tenant's audit log for a range of days, as CSV or JSON lines, to a file or stdout."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from core.cli.base import database, tenant_actor, user_errors
from core.text import plural

app = typer.Typer(no_args_is_help=True)


@app.command("export")
@user_errors
def export(
    tenant: Annotated[str, typer.Option(help="The tenant's name.")],
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"],
                                                   help="First UTC day, e.g. 2026-11-01.")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"],
                                                   help="Last UTC day, included.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. draft.approve.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    out: Annotated[Path | None, typer.Option(dir_okay=False,
                                             help="The file to write; stdout when absent.")] = None,
) -> None:
    """Write the audit log oldest first; rows are read in pages, so a long log streams."""
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("use csv or jsonl", param_hint="--format")
    chosen: Literal["csv", "jsonl"] = "csv" if fmt == "csv" else "jsonl"
    from core.analytics.activity import export_audit_log
    from core.analytics.period import Period

    period = Period(since.date() if since else None, until.date() if until else None)
    with database() as db:
        actor = tenant_actor(db, tenant)
        if out is None:
            written = export_audit_log(db, actor, sys.stdout, period=period, action=action, fmt=chosen)
        else:
            with out.open("w", encoding="utf-8", newline="") as file:
                written = export_audit_log(db, actor, file, period=period, action=action, fmt=chosen)
    typer.echo(f"{plural(written, 'entry')} exported ({period.describe()})", err=True)
