"""The command line, `python -m core.cli ...`: the services, for automation and scripting.

Each command group lives in its own module and registers itself on `app` here.
"""

from __future__ import annotations

import typer

from core.cli import campaigns, messages, replies, setup, tenants, users
from core.cli.base import app

app.add_typer(tenants.app, name="tenants", help="Create and list tenants.")
app.add_typer(users.app, name="users", help="Create and list users of a tenant.")
app.add_typer(campaigns.app, name="campaigns", help="Create campaigns and run them.")
app.add_typer(messages.app, name="messages", help="The send ledger.")
# `leads reply` belongs in the `leads` group; where core/cli/leads.py defines it, register the
# command on that group instead: replies.register(leads.app).
leads_app = typer.Typer(no_args_is_help=True)
replies.register(leads_app)
app.add_typer(leads_app, name="leads", help="Leads: record replies.")
app.command("init", help="Create or upgrade the database schema.")(setup.init)

__all__ = ["app"]
