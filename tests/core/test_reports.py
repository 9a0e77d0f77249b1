"""Overview figures: the KPIs, the live campaigns' progress and the reply rate, from SQL aggregates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from core.campaign_runs import pause_campaign
from core.db import Database
from core.errors import PermissionDenied
from core.models import CampaignLead, Role, Tenant
from core.permissions import Actor
from core.reports import format_usd, overview_figures
from tests.factories import make_actor, make_tenant, one_reply_in_three_campaigns, seed_run


def test_an_empty_tenant_is_empty(db: Database) -> None:
    figures = overview_figures(db, make_actor(db, make_tenant(db), Role.analyst))
    assert figures.is_empty and figures.reply_rate is None and figures.running_campaigns == []


def test_figures_of_a_run(db: Database) -> None:
    run = seed_run(db, leads=4, process=3, budget_cap_microusd=2_000_000)
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id == run.campaign_lead_ids[0])
                        .values(replied_at=datetime.now(UTC)))
        session.execute(update(Tenant).values(monthly_budget_microusd=10_000_000))
    seed_run(db, leads=4, tenant_id=run.owner.tenant_id, name="Paused one", process=0)
    paused = seed_run(db, leads=4, tenant_id=run.owner.tenant_id, name="Later one", process=0)
    pause_campaign(db, run.owner, paused.campaign_id)
    figures = overview_figures(db, make_actor(db, run.owner.tenant_id, Role.analyst))
    assert figures.leads == 4
    assert figures.campaigns_by_status == {"running": 2, "paused": 1}
    assert figures.messages_sent_today == 3
    assert (figures.leads_replied, figures.leads_contacted) == (1, 3)
    assert figures.reply_rate == pytest.approx(1 / 3)
    assert figures.monthly_budget_microusd == 10_000_000
    first = next(c for c in figures.running_campaigns if c.id == run.campaign_id)
    assert (first.enrolled, first.done, first.budget_cap_microusd) == (4, 3, 2_000_000)
    assert first.progress == 0.75
    assert {c.status for c in figures.running_campaigns} == {"running", "paused"}


def test_figures_are_per_tenant(db: Database) -> None:
    seed_run(db, leads=2)
    stranger = make_actor(db, make_tenant(db, "Other"), Role.owner, "stranger")
    assert overview_figures(db, stranger).is_empty


def test_the_overview_needs_its_permission(db: Database) -> None:
    class NoOverview(Actor):
        def can(self, permission: object) -> bool:
            return False

    with pytest.raises(PermissionDenied):
        overview_figures(db, NoOverview(user_id=None, tenant_id=1, role=Role.analyst))


@pytest.mark.parametrize(("microusd", "text"), [
    (None, "n/a"), (0, "$0.00"), (4_200, "$0.0042"), (1_234_500_000, "$1,234.50"), (-500_000, "$-0.5000"),
])
def test_format_usd(microusd: int | None, text: str) -> None:
    assert format_usd(microusd) == text


def test_the_reply_rate_counts_leads_not_enrolments(db: Database) -> None:
    """One lead in three campaigns who replied once is one reply from one lead contacted."""
    tenant = make_tenant(db)
    one_reply_in_three_campaigns(db, tenant, at=datetime.now(UTC))
    figures = overview_figures(db, make_actor(db, tenant, Role.analyst))
    assert (figures.leads_replied, figures.leads_contacted) == (1, 2)
    assert figures.reply_rate == pytest.approx(1 / 2)
