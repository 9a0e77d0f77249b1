"""Every page of the dashboard with the permission that opens it: app.py's navigation reads this."""

from __future__ import annotations

from dataclasses import dataclass

from core.models import Role
from core.permissions import ROLE_PERMISSIONS, Actor, Permission

# The icon of a page registered for a role that may not open it: hidden from the menu, it is there
# so that its URL (a bookmark, a link, the page open when the role changed) explains the refusal.
REFUSED_ICON = ":material/lock:"


@dataclass(frozen=True)
class PageSpec:
    script: str
    title: str
    icon: str
    # None: every signed-in user.
    permission: Permission | None

    @property
    def url_path(self) -> str:
        return self.script.removeprefix("pages/").removesuffix(".py")


P = Permission
# One flat menu, in the order of a day's work: every page one click away. (Sections would be
# drop-down menus in the top bar: a click to open, another to choose, even for a single page.)
PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", P.view_overview),
    PageSpec("pages/campaigns.py", "Campaigns", ":material/campaign:", P.view_campaigns),
    PageSpec("pages/review.py", "Review queue", ":material/rate_review:", P.review_drafts),
    PageSpec("pages/inbox.py", "Inbox", ":material/inbox:", P.view_inbox),
    PageSpec("pages/monitor.py", "Run monitor", ":material/monitor_heart:", P.view_monitor),
    PageSpec("pages/leads.py", "Leads", ":material/contacts:", P.view_leads),
    PageSpec("pages/costs.py", "Costs", ":material/payments:", P.view_costs),
    PageSpec("pages/reports.py", "Reports", ":material/query_stats:", P.view_reports),
    PageSpec("pages/admin.py", "Admin", ":material/admin_panel_settings:", P.manage_users),
    PageSpec("pages/account.py", "Account", ":material/account_circle:", None),
)


def pages_for(actor: Actor) -> list[PageSpec]:
    """The pages the actor's role may open, in the order above."""
    return [spec for spec in PAGES if spec.permission is None or actor.can(spec.permission)]


def refused_for(actor: Actor) -> list[PageSpec]:
    """The pages the actor's role may not open, in the order above."""
    return [spec for spec in PAGES if spec.permission is not None and not actor.can(spec.permission)]


def roles_that_open(spec: PageSpec) -> list[Role]:
    """The roles that may open the page, the least powerful first."""
    return [
        role
        for role in reversed(Role)
        if spec.permission is None or spec.permission in ROLE_PERMISSIONS[role]
    ]


# What a permission lets a person do, in the words of the confirmation before losing it.
ABILITIES: dict[Permission, str] = {
    P.view_overview: "see the overview",
    P.view_campaigns: "read campaigns",
    P.edit_campaigns: "write and edit campaigns",
    P.run_campaigns: "start, pause or cancel runs",
    P.review_drafts: "review drafts",
    P.view_monitor: "watch runs",
    P.view_costs: "see costs",
    P.view_reports: "read reports",
    P.export_reports: "export reports",
    P.view_leads: "read leads",
    P.manage_leads: "import, edit and erase leads",
    P.manage_suppressions: "manage the suppression list",
    P.manage_users: "manage users",
    P.manage_settings: "change the organisation's settings",
    P.view_audit_log: "read the audit log",
    P.manage_owners: "make or remove owners",
    P.manage_tenants: "create organisations",
    P.view_inbox: "read the inbox",
    P.handle_replies: "answer and assign replies",
    P.manage_api_keys: "create and revoke API keys",
    P.manage_webhooks: "manage outgoing webhooks",
}


def is_lower(new: Role, old: Role) -> bool:
    """Whether `new` may do less than `old`."""
    return ROLE_PERMISSIONS[new] < ROLE_PERMISSIONS[old]


def lost_by(old: Role, new: Role) -> tuple[list[str], list[str]]:
    """The page titles and the abilities a person loses when their role goes from `old` to `new`."""
    before, after = Actor(None, 0, old), Actor(None, 0, new)
    pages = [
        spec.title
        for spec in PAGES
        if spec.permission and before.can(spec.permission) and not after.can(spec.permission)
    ]
    abilities = [ABILITIES[p] for p in Permission if p in ROLE_PERMISSIONS[old] - ROLE_PERMISSIONS[new]]
    return pages, abilities


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _plural_list(roles: list[Role]) -> str:
    names = [f"{role.value}s" for role in roles]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def refusal(spec: PageSpec, role: Role) -> str:
    """What a role that may not open the page is told instead of the page (plain Markdown)."""
    return (
        f"Your role cannot open this page: **{spec.title}** is for {_plural_list(roles_that_open(spec))}, "
        f"and you are signed in as {_a(role.value)}. If you need it, ask an admin or the owner of your "
        "organisation to change your role."
    )
