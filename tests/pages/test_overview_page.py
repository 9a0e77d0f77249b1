"""The Overview for every role: the KPIs, running campaigns with progress, recent imports, empty state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from core.db import Database
from core.models import CampaignLead, Role, Tenant
from tests.core.inbound.conftest import seed_replies
from tests.factories import (
    make_actor,
    make_tenant,
    one_reply_in_three_campaigns,
    seed_run,
)
from tests.pages.conftest import PageFactory
from tests.pages.markdown_checks import IMAGE, LATEX, assert_shown_escaped, is_live

PAGE = "pages/overview.py"


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_kpis(open_page: PageFactory, db: Database, role: Role) -> None:
    run = seed_run(db, leads=4, process=2)
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id == run.campaign_lead_ids[0])
                        .values(replied_at=datetime.now(UTC)))
        session.execute(update(Tenant).values(monthly_budget_microusd=1_000_000))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, role, f"user-{role.value}"))
    assert not app.exception and not app.error and not app.info
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Leads"] == "4"
    assert metrics["Active campaigns"] == "1"
    assert metrics["Messages sent today (UTC)"] == "2"
    assert metrics["Reply rate"] == "50.0%"
    assert metrics["Spend this month"].startswith("$")
    texts = [p.proto.text for p in app.get("progress")]
    assert any("of the monthly budget" in t for t in texts)
    assert any("**Autumn SMS** · running · 2 of 4 leads done" in t for t in texts)


def test_empty_state(open_page: PageFactory, db: Database) -> None:
    app = open_page(PAGE, make_actor(db, make_tenant(db), Role.analyst))
    assert not app.exception
    assert "Start by importing leads" in app.info[0].value
    assert {m.label: m.value for m in app.metric}["Reply rate"] == "n/a"
    captions = "\n".join(c.value for c in app.caption)
    assert "No campaign is running" in captions and "No imports yet" in captions


def test_campaign_names_and_amounts_reach_the_markdown_escaped(open_page: PageFactory,
                                                               db: Database) -> None:
    name = f"Autumn {IMAGE} {LATEX}"
    run = seed_run(db, leads=2, process=1, name=name, budget_cap_microusd=5_000_000)
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst))
    assert_shown_escaped(app, name)
    (running,) = [p.proto.text for p in app.get("progress") if "leads done" in p.proto.text]
    assert " of $" in running.replace("\\$", "$")  # the spend and the cap, both shown
    assert not is_live(running, "$")  # and neither opens a LaTeX formula


def test_the_reply_rate_counts_leads_across_campaigns(open_page: PageFactory, db: Database) -> None:
    """One lead replying once while enrolled in three campaigns is one reply, from distinct leads."""
    tenant = make_tenant(db)
    one_reply_in_three_campaigns(db, tenant, at=datetime.now(UTC))
    app = open_page(PAGE, make_actor(db, tenant, Role.analyst))
    (rate,) = [m for m in app.metric if m.label == "Reply rate"]
    assert rate.value == "50.0%"
    assert rate.proto.help == "1 lead replied of 2 leads contacted (each lead counted once)."


@pytest.mark.parametrize("role", list(Role))
def test_replies_waiting_for_a_person(open_page: PageFactory, db: Database, role: Role) -> None:
    replies = seed_replies(db)
    for body in ("How much is it?", "Sounds great", "STOP"):
        replies.receive(body)
    replies.run()  # the opt-out is settled by the agent; the other two wait for a person
    app = open_page(PAGE, make_actor(db, replies.tenant_id, role, f"user-{role.value}"))
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Replies waiting"] == "2"
