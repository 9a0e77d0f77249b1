"""The command line, `python -m core.cli ...`: the services, for automation and scripting.

Each command group lives in its own module and registers itself on `app` here.
"""

from __future__ import annotations

from core.cli import leads, setup, suppressions, tenants, users
from core.cli.base import app

app.add_typer(tenants.app, name="tenants", help="Create and list tenants.")
app.add_typer(users.app, name="users", help="Create and list users of a tenant.")
app.add_typer(leads.app, name="leads", help="Import and export leads.")
app.add_typer(suppressions.app, name="suppressions", help="Import suppression lists.")
app.command("init", help="Create or upgrade the database schema.")(setup.init)

__all__ = ["app"]
