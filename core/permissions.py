"""Roles and what each may do: the one permission table that every service enforces."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.errors import PermissionDenied
from core.models import Role


class Permission(enum.StrEnum):
    view_overview = "view_overview"
    view_campaigns = "view_campaigns"
    edit_campaigns = "edit_campaigns"
    run_campaigns = "run_campaigns"
    review_drafts = "review_drafts"
    view_monitor = "view_monitor"
    view_costs = "view_costs"
    view_reports = "view_reports"
    export_reports = "export_reports"
    view_leads = "view_leads"
    manage_leads = "manage_leads"
    manage_suppressions = "manage_suppressions"
    manage_users = "manage_users"
    manage_settings = "manage_settings"
    view_audit_log = "view_audit_log"
    manage_owners = "manage_owners"
    # The installation's owners: create organisations (tenants) beside their own.
    manage_tenants = "manage_tenants"
    # The Inbox: read the conversations with leads (every role); answer, assign, mark handled.
    view_inbox = "view_inbox"
    handle_replies = "handle_replies"
    # API keys for machines (core.api_keys): create, list and revoke; a key's role is at most its creator's.
    manage_api_keys = "manage_api_keys"
    # Outgoing webhooks: register endpoints, see their secrets and delivery logs.
    manage_webhooks = "manage_webhooks"


_ANALYST = frozenset(
    {
        Permission.view_overview,
        Permission.view_campaigns,
        Permission.view_monitor,
        Permission.view_costs,
        Permission.view_reports,
        Permission.export_reports,
        Permission.view_inbox,
    }
)
# Managers read leads (their table and each lead's page) to write and review outreach; analysts
# work on aggregates and never see a person's details; importing, editing, opting out and
# erasing leads stay with admins and the owner.
_MANAGER = _ANALYST | {
    Permission.view_leads,
    Permission.edit_campaigns,
    Permission.run_campaigns,
    Permission.review_drafts,
    Permission.handle_replies,
}
_ADMIN = _MANAGER | {
    Permission.manage_leads,
    Permission.manage_suppressions,
    Permission.manage_users,
    Permission.manage_settings,
    Permission.view_audit_log,
    Permission.manage_api_keys,
    Permission.manage_webhooks,
}
_OWNER = _ADMIN | {Permission.manage_owners, Permission.manage_tenants}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.analyst: _ANALYST,
    Role.manager: frozenset(_MANAGER),
    Role.admin: frozenset(_ADMIN),
    Role.owner: frozenset(_OWNER),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: passed to every service that changes or reads tenant data for a person."""

    user_id: int | None
    tenant_id: int
    role: Role
    username: str = ""
    name: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(
                f"your role ({self.role.value}) may not {permission.value.replace('_', ' ')}; "
                "ask an admin or the owner"
            )


def system_actor(tenant_id: int) -> Actor:
    """The actor for automation (the CLI, the runner): acts with the owner's rights."""
    return Actor(user_id=None, tenant_id=tenant_id, role=Role.owner, username="system")
