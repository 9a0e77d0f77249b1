"""The Campaigns page's A/B test tab: the result with its significance, and keeping the winner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from core.campaigns import create_campaign, get_campaign
from core.db import Database
from core.models import AuditLog, Campaign, CampaignLead, Role
from tests.factories import enrol, make_actor, make_lead, make_tenant
from tests.pages.conftest import PageFactory
from tests.pages.conftest import table as page_table

PAGE = "pages/campaigns.py"


def _button(app: AppTest, key: str) -> Any:
    return next(b for b in app.button if b.key == key)


def _seed(db: Database, replies_b: int) -> tuple[int, int]:
    tenant = make_tenant(db)
    manager = make_actor(db, tenant, Role.manager)
    campaign = create_campaign(db, manager, name="A/B", channel="sms",
                               variants=[{"name": "A", "prompt": "Keep it brief."},
                                         {"name": "B", "prompt": "End with a question."}]).id
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(update(Campaign).values(status="running"))
    now = datetime.now(UTC)
    for n in range(20):
        enrol(db, tenant, campaign, make_lead(db, tenant), variant="A", first_touch="sent",
              replied_at=now if n < 2 else None)
        enrol(db, tenant, campaign, make_lead(db, tenant), variant="B", first_touch="sent",
              replied_at=now if n < replies_b else None)
    for _ in range(3):
        enrol(db, tenant, campaign, make_lead(db, tenant), variant="A", status="pending")
    return tenant, campaign


def test_not_yet_significant_says_how_many_more_leads(db: Database, open_page: PageFactory) -> None:
    tenant, campaign = _seed(db, replies_b=4)
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    assert [t.label for t in app.tabs] == ["Run", "Editor", "A/B test"]
    table = page_table(app, f"cmp{campaign}_ab_table")
    assert list(table["variant"]) == ["A", "B"] and list(table["replied"]) == [2, 4]
    [info] = [i.value for i in app.info if "significant" in i.value]
    assert info.startswith("Not yet significant (p = 0.66)")
    assert "need about" in info and "more leads per variant" in info
    # An analyst reads the result but cannot keep a variant.
    assert f"cmp{campaign}_ab_keep" not in {b.key for b in app.button}


def test_a_manager_keeps_the_winner(db: Database, open_page: PageFactory) -> None:
    tenant, campaign = _seed(db, replies_b=14)
    manager = make_actor(db, tenant, Role.manager, username="boss")
    app = open_page(PAGE, manager)
    assert any(s.value.startswith("Variant B wins: 70.0% of variant B's leads replied") for s in app.success)
    assert app.selectbox(key=f"cmp{campaign}_ab_winner").value == "B"
    _button(app, f"cmp{campaign}_ab_keep").click().run()
    assert not app.exception and not app.error
    assert "Variant B kept: 3 leads moved to it; new leads get it too." in [s.value for s in app.success]
    assert any("Variant B was kept" in c.value for c in app.caption)
    assert f"cmp{campaign}_ab_keep" not in {b.key for b in app.button}
    with db.session(tenant_id=tenant, read_only=True) as session:
        pending = session.scalars(select(CampaignLead.variant).where(CampaignLead.status == "pending")).all()
        assert list(pending) == ["B", "B", "B"]
        assert session.scalars(select(AuditLog.action).where(AuditLog.action == "keep_winner")).all() == [
            "keep_winner"]
    assert [v.weight for v in get_campaign(db, manager, campaign).variants] == [0, 100]
