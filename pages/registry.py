"""Every page of the dashboard with the permission that opens it: app.py's navigation reads this."""

from __future__ import annotations

from dataclasses import dataclass

from core.permissions import Actor, Permission


@dataclass(frozen=True)
class PageSpec:
    script: str
    title: str
    icon: str
    # None: every signed-in user.
    permission: Permission | None
    section: str

    @property
    def url_path(self) -> str:
        return self.script.removeprefix("pages/").removesuffix(".py")


P = Permission
_OUTREACH, _INSIGHTS, _ADMIN, _YOU = "Outreach", "Insights", "Admin", "You"
PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", P.view_overview, _OUTREACH),
    PageSpec("pages/campaigns.py", "Campaigns", ":material/campaign:", P.view_campaigns, _OUTREACH),
    PageSpec("pages/review.py", "Review queue", ":material/rate_review:", P.review_drafts, _OUTREACH),
    PageSpec("pages/monitor.py", "Run monitor", ":material/monitor_heart:", P.view_monitor, _OUTREACH),
    PageSpec("pages/leads.py", "Leads", ":material/contacts:", P.manage_leads, _OUTREACH),
    PageSpec("pages/costs.py", "Costs", ":material/payments:", P.view_costs, _INSIGHTS),
    PageSpec("pages/reports.py", "Reports", ":material/query_stats:", P.view_reports, _INSIGHTS),
    PageSpec("pages/admin.py", "Admin", ":material/admin_panel_settings:", P.manage_users, _ADMIN),
    PageSpec("pages/account.py", "Account", ":material/account_circle:", None, _YOU),
)


def pages_for(actor: Actor) -> dict[str, list[PageSpec]]:
    """The pages the actor's role may open, grouped by section, in the order above."""
    sections: dict[str, list[PageSpec]] = {}
    for spec in PAGES:
        if spec.permission is None or actor.can(spec.permission):
            sections.setdefault(spec.section, []).append(spec)
    return sections
