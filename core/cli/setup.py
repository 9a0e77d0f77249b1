"""`init`: create or upgrade the schema."""

from __future__ import annotations

import typer

from core.cli.base import database, user_errors


@user_errors
def init() -> None:
    with database() as db:
        url = db.engine.url.render_as_string(hide_password=True)
    typer.echo(f"database ready at {url}")
