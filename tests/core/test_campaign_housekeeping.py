"""Campaign housekeeping: clone, archive and restore, delete a draft; each audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.campaign_editor import campaign_table
from core.campaign_housekeeping import (
    archive_campaign,
    clone_campaign,
    copy_name,
    delete_campaign,
    restore_campaign,
)
from core.campaigns import create_campaign, get_campaign, list_campaigns, update_campaign
from core.db import Database
from core.errors import Conflict, NotFound, PermissionDenied
from core.models import AuditLog, Campaign, LLMCall, Role
from tests.factories import add_llm_call, enrol, make_actor, make_campaign, make_lead, make_tenant


def _audit(db: Database, tenant_id: int) -> list[tuple[str, str | None, dict]]:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        return [(a.action, a.entity_id, a.details)
                for a in session.scalars(select(AuditLog).where(AuditLog.entity == "campaign")
                                         .order_by(AuditLog.id))]


@pytest.mark.parametrize("status", ["draft", "running", "completed", "cancelled"])
def test_clone_makes_a_draft_with_the_same_settings(db: Database, status: str) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.manager)
    original = create_campaign(
        db, actor, name="Spring push", channel="email", system_prompt="Write warmly.",
        approval_required=True, budget_cap_microusd=5_000_000,
        variants=[{"name": "A", "prompt": "brief"}, {"name": "B", "prompt": "a question"}],
        audience={"tags": ["vip"]}, steps=[{"delay_hours": 0}, {"delay_hours": 48, "prompt": "nudge"}],
        sends_per_minute=30, send_window={"start": "09:00", "end": "17:00", "weekdays_only": True},
        temperature=0.3, research_web=True)
    with db.session(tenant_id=tenant) as session, session.begin():
        row = session.get(Campaign, original.id)
        assert row is not None
        row.status, row.spent_microusd = status, 1234
    copy = clone_campaign(db, actor, original.id)
    assert copy.id != original.id and copy.name == "Copy of Spring push"
    assert (copy.status, copy.spent_microusd, copy.started_at) == ("draft", 0, None)
    for field in ("channel", "system_prompt", "variants", "audience", "steps", "sends_per_minute",
                  "send_window", "temperature", "research_web", "approval_required",
                  "budget_cap_microusd", "model", "max_sms_segments"):
        assert getattr(copy, field) == getattr(original, field), field
    assert ("clone", str(copy.id), {"from_campaign": original.id, "name": "Copy of Spring push"}) in _audit(
        db, tenant)
    # The copy is a draft: everything in it can change.
    assert update_campaign(db, actor, copy.id, system_prompt="Changed.").system_prompt == "Changed."


def test_a_copys_name_fits_the_name_limit() -> None:
    assert copy_name("x" * 200) == "Copy of " + "x" * 192


def test_analysts_cannot_clone_archive_or_delete(db: Database) -> None:
    tenant = make_tenant(db)
    campaign = make_campaign(db, tenant, status="completed")
    analyst = make_actor(db, tenant, Role.analyst)
    for action in (clone_campaign, archive_campaign, delete_campaign, restore_campaign):
        with pytest.raises(PermissionDenied):
            action(db, analyst, campaign)


def test_archive_hides_a_finished_campaign_until_it_is_restored(db: Database) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.manager)
    done = make_campaign(db, tenant, "Done", status="completed")
    live = make_campaign(db, tenant, "Live", status="running")
    archived = archive_campaign(db, actor, done, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert archived.archived_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert [c.name for c in list_campaigns(db, actor)] == ["Live"]
    assert list(campaign_table(db, actor)["name"]) == ["Live"]
    assert [c.name for c in list_campaigns(db, actor, archived=True)] == ["Done"]
    assert list(campaign_table(db, actor, archived=True)["name"]) == ["Done"]
    assert {c.name for c in list_campaigns(db, actor, archived=None)} == {"Done", "Live"}
    restore_campaign(db, actor, done)
    assert {c.name for c in list_campaigns(db, actor)} == {"Done", "Live"}
    assert [(a, e) for a, e, _ in _audit(db, tenant)] == [("archive", str(done)), ("restore", str(done))]
    with pytest.raises(Conflict, match="not archived"):
        restore_campaign(db, actor, done)
    with pytest.raises(Conflict, match="only a completed, cancelled or failed campaign"):
        archive_campaign(db, actor, live)


def test_delete_removes_a_draft_and_keeps_its_preview_spend(db: Database) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.manager)
    draft = make_campaign(db, tenant, "Draft", status="draft")
    add_llm_call(db, tenant, cost_microusd=42, created_at=datetime.now(UTC), campaign_id=draft,
                 node="preview:compose")
    assert delete_campaign(db, actor, draft) == "Draft"
    with pytest.raises(NotFound):
        get_campaign(db, actor, draft)
    with db.session(tenant_id=tenant, read_only=True) as session:
        assert session.execute(select(LLMCall.campaign_id, LLMCall.cost_microusd)).all() == [(None, 42)]
    assert _audit(db, tenant) == [("delete", str(draft), {"name": "Draft", "channel": "sms", "enrolled": 0})]


@pytest.mark.parametrize("status", ["running", "paused", "completed", "cancelled"])
def test_delete_refuses_a_campaign_that_left_draft(db: Database, status: str) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.manager)
    campaign = make_campaign(db, tenant, "Sent", status=status)
    with pytest.raises(Conflict, match="only a draft that never sent can be deleted"):
        delete_campaign(db, actor, campaign)
    assert get_campaign(db, actor, campaign).status == status
    assert _audit(db, tenant) == []


def test_delete_refuses_a_draft_with_a_sent_message(db: Database) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, Role.manager)
    campaign = make_campaign(db, tenant, "Odd", status="draft")
    enrol(db, tenant, campaign, make_lead(db, tenant), first_touch="sent")
    with pytest.raises(Conflict, match="has sent messages"):
        delete_campaign(db, actor, campaign)
    assert get_campaign(db, actor, campaign).name == "Odd"
