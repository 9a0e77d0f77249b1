"""Every page of the dashboard with the permission that opens it: app.py's navigation reads this."""

from __future__ import annotations

from dataclasses import dataclass

from core.permissions import Actor, Permission


@dataclass(frozen=True)
class PageSpec:
    script: str
    title: str
    icon: str
    permission: Permission
    section: str

    @property
    def url_path(self) -> str:
        return self.script.removeprefix("pages/").removesuffix(".py")


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", Permission.view_overview, "Outreach"),
    PageSpec("pages/campaigns.py", "Campaigns", ":material/campaign:", Permission.view_campaigns, "Outreach"),
    PageSpec("pages/leads.py", "Leads", ":material/contacts:", Permission.manage_leads, "Outreach"),
    PageSpec("pages/costs.py", "Costs", ":material/payments:", Permission.view_costs, "Insights"),
    PageSpec("pages/reports.py", "Reports", ":material/query_stats:", Permission.view_reports, "Insights"),
    PageSpec("pages/admin.py", "Admin", ":material/admin_panel_settings:", Permission.manage_users, "Admin"),
)


def pages_for(actor: Actor) -> dict[str, list[PageSpec]]:
    """The pages the actor's role may open, grouped by section, in the order above."""
    sections: dict[str, list[PageSpec]] = {}
    for spec in PAGES:
        if actor.can(spec.permission):
            sections.setdefault(spec.section, []).append(spec)
    return sections
