"""The campaign editor's core: live audience counts, lead picking, the list, saving only changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core import campaign_editor
from core.campaign_editor import (
    audience_choices,
    audience_leads,
    campaign_table,
    count_audience_filter,
    editable_fields,
    lock_reason,
    model_choices,
    save_campaign,
)
from core.campaign_runs import start_campaign
from core.campaigns import create_campaign, get_campaign
from core.config import Settings
from core.db import Database
from core.enrolment import count_audience
from core.errors import Conflict, PermissionDenied, ValidationError
from core.leads.queries import add_tags
from core.models import Campaign, CampaignLead, CampaignOutcome, Role, Suppression
from core.permissions import Actor
from tests.factories import enrol, insert_leads, make_actor, make_tenant


@pytest.fixture
def tenant(db: Database) -> int:
    return make_tenant(db)


@pytest.fixture
def manager(db: Database, tenant: int) -> Actor:
    return make_actor(db, tenant, Role.manager)


@pytest.fixture
def leads(db: Database, tenant: int) -> list[int]:
    """Six leads: three Software in the US, two Retail in CA, one opted-out Software lead."""
    ids = insert_leads(db, tenant, 3, industry="Software")
    ids += insert_leads(db, tenant, 2, start=3, industry="Retail", country="CA")
    ids += insert_leads(db, tenant, 1, start=5, industry="Software", opted_out_at=datetime.now(UTC))
    return ids


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({}, 5),
        ({"industries": ["software"]}, 3),
        ({"countries": ["ca"]}, 2),
        ({"industries": ["Software"], "countries": ["CA"]}, 0),
        ({"industries": ["Software", "Retail"]}, 5),
        ({"tags": ["vip"]}, 2),
    ],
)
def test_count_audience_filter(
    db: Database, manager: Actor, leads: list[int], audience: dict[str, Any], expected: int
) -> None:
    owner = make_actor(db, manager.tenant_id, Role.owner)
    add_tags(db, owner, [leads[0], leads[3], leads[5]], "vip")  # leads[5] is opted out
    assert count_audience_filter(db, manager, "sms", audience) == expected


def test_count_audience_filter_matches_what_a_start_enrols(
    db: Database, manager: Actor, leads: list[int], tenant: int
) -> None:
    insert_leads(db, tenant, 1, start=7, phone=None)  # no phone: only email can reach it
    with db.session(tenant_id=tenant) as session, session.begin():
        session.add(Suppression(channel="sms", address="+12025550000", reason="complaint"))
    assert count_audience_filter(db, manager, "sms", {}) == 4
    assert count_audience_filter(db, manager, "email", {}) == 6
    campaign = create_campaign(db, manager, name="Count", channel="sms")
    assert count_audience(db, manager, campaign.id) == 4


def test_count_audience_filter_refuses_unknown_keys(db: Database, manager: Actor) -> None:
    with pytest.raises(ValidationError, match="unknown audience filter"):
        count_audience_filter(db, manager, "sms", {"cities": ["Paris"]})


def test_audience_choices_offer_tags_imports_industries_and_countries(
    db: Database, manager: Actor, leads: list[int]
) -> None:
    add_tags(db, make_actor(db, manager.tenant_id, Role.owner), leads[:2], "fair, vip")
    choices = audience_choices(db, make_actor(db, manager.tenant_id, Role.analyst))
    assert choices.tags == ["fair", "vip"]
    assert choices.industries == ["Retail", "Software"]
    assert choices.countries == ["CA", "US"]
    assert choices.imports == {}


def test_audience_choices_are_the_tenants_own_values_up_to_the_limit(
    db: Database, manager: Actor, leads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_tenant(db, "Other")
    insert_leads(db, other, 1, industry="Aardvarks", country="AT")  # sorts first, in another tenant
    insert_leads(db, other, 1, start=1, industry="Zoos", country="ZW")
    choices = audience_choices(db, manager)
    assert (choices.industries, choices.countries) == (["Retail", "Software"], ["CA", "US"])
    monkeypatch.setattr(campaign_editor, "CHOICES_LIMIT", 1)
    assert audience_choices(db, manager).industries == ["Retail"]


def test_audience_leads_pages_and_searches_the_audience(
    db: Database, manager: Actor, leads: list[int]
) -> None:
    campaign = create_campaign(db, manager, name="Pick", channel="sms",
                               audience={"industries": ["Software"]})
    first = audience_leads(db, manager, campaign.id, page_size=2)
    second = audience_leads(db, manager, campaign.id, page=2, page_size=2)
    assert [c.id for c in first + second] == leads[:3]  # the opted-out lead is not offered
    assert f"#{leads[0]} Lead0 Test · Company 0 · +1202" in first[0].label
    assert [c.id for c in audience_leads(db, manager, campaign.id, search="company 2")] == [leads[2]]
    assert [c.id for c in audience_leads(db, manager, campaign.id, search=f"#{leads[1]}")] == [leads[1]]
    assert audience_leads(db, manager, campaign.id, search="Company 3") == []  # Retail


def test_campaign_table_has_progress_and_spend(
    db: Database, manager: Actor, leads: list[int], tenant: int
) -> None:
    empty = create_campaign(db, manager, name="Empty", channel="sms")
    busy = create_campaign(db, manager, name="Busy", channel="sms", budget_cap_microusd=5_000_000)
    for lead_id, status in zip(leads[:4], ["sent", "skipped", "pending", "failed"], strict=True):
        enrol(db, tenant, busy.id, lead_id, status=status)
    table = campaign_table(db, make_actor(db, tenant, Role.analyst)).set_index("name")
    assert table.loc["Busy", "enrolled"] == 4
    assert table.loc["Busy", "progress"] == pytest.approx(0.75)
    assert table.loc["Busy", "budget_usd"] == 5.0
    assert table.loc["Empty", "progress"] == 0.0 and table.loc["Empty", "enrolled"] == 0
    assert empty.id in set(table["id"])


def test_a_finished_campaigns_counts_are_kept_until_it_finishes_again(
    db: Database, manager: Actor, leads: list[int], tenant: int
) -> None:
    campaign = create_campaign(db, manager, name="Done", channel="sms")
    sent = enrol(db, tenant, campaign.id, leads[0], status="sent", first_touch="delivered")
    enrol(db, tenant, campaign.id, leads[1], status="failed")
    finished = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == campaign.id)
                        .values(status="completed", completed_at=finished))

    def shown() -> tuple[str, int]:
        row = campaign_table(db, manager).set_index("name").loc["Done"]
        return str(row["status"]), int(row["enrolled"])

    assert shown() == ("completed: 1 sent, 1 failed", 2)
    with db.session(tenant_id=tenant, read_only=True) as session:
        kept = session.scalars(select(CampaignOutcome)).one()
    assert (kept.campaign_id, kept.completed_at, kept.messages_sent) == (campaign.id, finished, 1)
    # Read from the kept row, not counted again: a change under a finished campaign is not seen...
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id == sent).values(status="skipped"))
    assert shown() == ("completed: 1 sent, 1 failed", 2)
    # ...until it finishes again (reopened by a retry, completed later): then counted afresh.
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == campaign.id)
                        .values(completed_at=finished + timedelta(days=1)))
    assert shown() == ("completed: 1 sent, 1 failed, 1 skipped", 2)
    other = make_actor(db, make_tenant(db, "Other"), Role.owner)
    assert campaign_table(db, other).empty


def test_model_choices_come_from_the_price_table_default_first(settings: Settings) -> None:
    models = model_choices(settings)
    assert models[0] == settings.default_model and "gpt-4o" in models
    assert len(models) == len(set(models))
    assert model_choices(settings, "my-own-model")[:2] == ["my-own-model", settings.default_model]


@pytest.mark.parametrize(
    ("status", "field", "editable", "reason"),
    [("draft", "audience", True, None), ("paused", "budget_cap_microusd", True, "paused"),
     ("paused", "system_prompt", False, "paused"), ("running", "name", True, "running"),
     ("running", "sends_per_minute", False, "Pause it"), ("completed", "name", False, "no longer")],
)
def test_editable_fields_and_lock_reason(status: str, field: str, editable: bool,
                                         reason: str | None) -> None:
    assert (field in editable_fields(status)) is editable
    assert (lock_reason(status) is None) if reason is None else reason in (lock_reason(status) or "")


def test_save_campaign_creates_then_sends_only_changes(
    db: Database, manager: Actor, leads: list[int]
) -> None:
    form = {"name": "Form", "channel": "sms", "system_prompt": "Be brief.", "temperature": 0.5,
            "audience": {"countries": ["CA"]}, "steps": [{"delay_hours": 0}]}
    created = save_campaign(db, manager, None, form)
    assert (created.status, created.temperature, created.audience) == ("draft", 0.5, {"countries": ["CA"]})
    start_campaign(db, manager, created.id)
    # The whole form again with a new name: the untouched locked fields are not refused.
    renamed = save_campaign(db, manager, created.id, {**form, "name": "Renamed"})
    assert renamed.name == "Renamed"
    with pytest.raises(Conflict, match="system_prompt cannot be changed now"):
        save_campaign(db, manager, created.id, {**form, "system_prompt": "Changed."})
    assert get_campaign(db, manager, created.id).system_prompt == "Be brief."


def test_save_campaign_checks_the_role_and_the_fields(db: Database, manager: Actor) -> None:
    analyst = make_actor(db, manager.tenant_id, Role.analyst)
    with pytest.raises(PermissionDenied):
        save_campaign(db, analyst, None, {"name": "No", "channel": "sms"})
    with pytest.raises(ValidationError, match="unknown campaign field status"):
        save_campaign(db, manager, None, {"name": "No", "channel": "sms", "status": "running"})
