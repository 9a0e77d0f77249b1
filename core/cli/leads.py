"""`leads import|export`: lead spreadsheets in and out, for automation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from core.cli.base import database, fail, print_json, tenant_actor, user_errors
from core.text import plural

app = typer.Typer(no_args_is_help=True)
REJECTS_SHOWN = 20


def _read_mapping(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read the mapping {path}: {exc}")
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        fail(f'the mapping {path} must be a JSON object {{"column header": "lead field", ...}}')
    return {str(k): v for k, v in mapping.items()}


@app.command("import")
@user_errors
def import_(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .xlsx file of leads."),
    ],
    tenant: Annotated[str, typer.Option(help="The tenant's name.")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            help='JSON file {"column header": "lead field"} that corrects the saved or suggested '
            "mapping: only the columns it names change."
        ),
    ] = None,
    on_duplicate: Annotated[str, typer.Option(help="skip, fill (empty fields) or overwrite.")] = "skip",
    sheet: Annotated[str | None, typer.Option(help="The XLSX sheet (default: the first).")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="A tag for every lead of the file (repeatable).")
    ] = None,
    phone_country: Annotated[
        str | None,
        typer.Option(
            help="The country national phone numbers are in, such as US or GB (default: the tenant's); "
            "numbers written with their country code (+44 ...) need none."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    from core.leads.importer import import_leads, reject_message

    with database() as db:
        summary = import_leads(
            db,
            tenant_actor(db, tenant),
            file_name=file.name,
            data=file.read_bytes(),
            mapping=_read_mapping(mapping),
            on_duplicate=on_duplicate,
            tags=tag or [],
            sheet=sheet,
            phone_country=phone_country,
        )
    if as_json:
        print_json(summary.counts())
        return
    typer.echo(
        f"import {summary.import_id}: {plural(summary.rows, 'row')}, {summary.imported} imported, "
        f"{summary.updated} updated, {plural(summary.duplicates, 'duplicate')}, {summary.rejected} rejected, "
        f"{summary.with_warnings} imported with warnings"
    )
    if summary.rejects:
        typer.echo(f"{plural(summary.rejected, 'rejected row')} (not imported):")
    for reject in summary.rejects[:REJECTS_SHOWN]:
        typer.echo(f"  {reject_message(reject)}")
    if summary.rejected > REJECTS_SHOWN:
        typer.echo(f"  ... and {plural(summary.rejected - REJECTS_SHOWN, 'more rejected row')}")
    if summary.warnings:
        typer.echo(f"{plural(len(summary.warnings), 'warning')} on imported rows:")
        for warning in summary.warnings[:REJECTS_SHOWN]:
            typer.echo(f"  row {warning['row']}: {warning['warning']}")
        if len(summary.warnings) > REJECTS_SHOWN:
            typer.echo(f"  ... and {plural(len(summary.warnings) - REJECTS_SHOWN, 'more warning')}")


@app.command("export")
@user_errors
def export(
    tenant: Annotated[str, typer.Option(help="The tenant's name.")],
    out: Annotated[Path, typer.Option(help="The file to write: .csv or .xlsx.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the count as JSON.")] = False,
) -> None:
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        fail(f"--out must end in .csv or .xlsx, not '{out.suffix or out.name}'")
    from core.leads.queries import export_leads

    with database() as db:
        count = export_leads(db, tenant_actor(db, tenant), out, fmt=fmt)
    if as_json:
        print_json({"leads": count, "out": str(out)})
    else:
        typer.echo(f"exported {plural(count, 'lead')} to {out}")
