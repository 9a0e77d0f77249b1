"""The command line, `python -m core.cli ...`: the services, for automation and scripting.

Each command group lives in its own module and registers itself on `app` here.
"""

from __future__ import annotations

from core.cli import api_keys, audit, campaigns, leads, messages, replies, setup, suppressions, tenants, users
from core.cli.base import app

app.add_typer(tenants.app, name="tenants", help="Create and list tenants.")
app.add_typer(users.app, name="users", help="Create and list users of a tenant.")
replies.register(leads.app)
app.add_typer(leads.app, name="leads", help="Import, export and reply to leads.")
app.add_typer(suppressions.app, name="suppressions", help="Import suppression lists.")
app.add_typer(campaigns.app, name="campaigns", help="Create campaigns and run them.")
app.add_typer(messages.app, name="messages", help="The send ledger.")
app.add_typer(audit.app, name="audit", help="Export the audit log.")
app.add_typer(api_keys.app, name="api-keys", help="Create, list and revoke a tenant's API keys.")
app.command("init", help="Create or upgrade the database schema.")(setup.init)

__all__ = ["app"]
