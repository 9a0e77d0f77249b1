"""A campaign's shape: typed steps and variants over unchanged JSON, and the one list of its fields."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, inspect, select, type_coerce, update

from core.campaign_shape import (
    MAX_SMS_SEGMENTS,
    TEMPERATURE,
    CampaignData,
    CampaignView,
    Step,
    Variant,
    check_steps,
    check_variants,
    steps_from_json,
    variants_from_json,
)
from core.campaigns import create_campaign, get_campaign, update_campaign
from core.db import Database
from core.errors import ValidationError
from core.models import Campaign, Role
from core.pipeline.run_inputs import _CAMPAIGN_COLUMNS
from tests.factories import make_actor, make_tenant

# Columns kept for the services' own bookkeeping, shown to no one.
INTERNAL_COLUMNS = {"consecutive_provider_failures", "created_by", "updated_at"}


def test_every_campaign_column_has_its_place_in_the_view_and_the_pipeline_reads_only_columns() -> None:
    columns = {c.key for c in inspect(Campaign).column_attrs}
    assert set(CampaignView.field_names()) == columns - INTERNAL_COLUMNS
    assert set(CampaignData.field_names()) < set(CampaignView.field_names())
    assert list(_CAMPAIGN_COLUMNS) == list(CampaignData.field_names())


def test_a_new_campaign_takes_its_defaults_from_the_ranges(db: Database) -> None:
    manager = make_actor(db, make_tenant(db), Role.manager)
    campaign = create_campaign(db, manager, name="Defaults", channel="sms")
    assert campaign.temperature == TEMPERATURE.default
    assert campaign.max_sms_segments == MAX_SMS_SEGMENTS.default
    assert campaign.steps == (Step(),) and campaign.variants == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"temperature": 2.1}, "the temperature must be between 0 and 2"),
        ({"temperature": -0.1}, "the temperature must be between 0 and 2"),
        ({"max_sms_segments": 11}, "an SMS may have 1 to 10 segments"),
        ({"max_sms_segments": 0}, "an SMS may have 1 to 10 segments"),
        ({"sends_per_minute": 0}, "the send rate must be at least 1 per minute"),
        ({"steps": [{"delay_hours": 0}, {"delay_hours": -1}]}, "step 2: delay_hours must be a number"),
        ({"steps": [{"delay_hours": "soon"}]}, "step 1: delay_hours must be a number"),
        ({"steps": ["hello"]}, "step 1 must be an object with delay_hours and a prompt"),
        ({"variants": [{"name": "A"}, {"name": "A"}]}, "each A/B variant needs a distinct name"),
        ({"variants": [{"prompt": "no name"}]}, "each A/B variant needs a distinct name"),
        ({"variants": ["A"]}, "each A/B variant needs a distinct name"),
    ],
)
def test_a_value_outside_its_range_is_refused_with_a_message(
    db: Database, change: dict[str, Any], message: str
) -> None:
    manager = make_actor(db, make_tenant(db), Role.manager)
    campaign = create_campaign(db, manager, name="Ranges", channel="sms")
    with pytest.raises(ValidationError, match=message):
        update_campaign(db, manager, campaign.id, **change)


def test_the_bounds_themselves_are_accepted(db: Database) -> None:
    manager = make_actor(db, make_tenant(db), Role.manager)
    campaign = create_campaign(db, manager, name="Bounds", channel="sms")
    saved = update_campaign(db, manager, campaign.id, temperature=TEMPERATURE.high,
                            max_sms_segments=MAX_SMS_SEGMENTS.high)
    assert (saved.temperature, saved.max_sms_segments) == (2.0, 10)


def test_steps_and_variants_are_stored_as_the_same_json_and_read_back_typed(db: Database) -> None:
    tenant = make_tenant(db)
    manager = make_actor(db, tenant, Role.manager)
    campaign = create_campaign(
        db, manager, name="JSON", channel="sms",
        steps=[{"delay_hours": 0}, {"delay_hours": 48, "prompt": "Nudge."}],
        variants=[{"name": "A", "prompt": "Brief."}, {"name": "B", "prompt": "Ask.", "weight": 0}],
    )
    with db.session(tenant_id=tenant, read_only=True) as session:
        stored = session.execute(
            select(type_coerce(Campaign.steps, JSON), type_coerce(Campaign.variants, JSON))
            .where(Campaign.id == campaign.id)
        ).one()
    assert tuple(stored) == (
        [{"delay_hours": 0}, {"delay_hours": 48, "prompt": "Nudge."}],
        [{"name": "A", "prompt": "Brief."}, {"name": "B", "prompt": "Ask.", "weight": 0}],
    )
    again = get_campaign(db, manager, campaign.id)
    assert again.steps == (Step(0), Step(48, "Nudge."))
    assert again.variants == (Variant("A", "Brief."), Variant("B", "Ask.", weight=0))
    assert [v.dealt for v in again.variants] == [True, False]


def test_json_written_before_it_was_checked_still_reads(db: Database) -> None:
    # Rows may hold what no check let through since: a step that is not an object, a variant
    # without a name. They read as a step sent at once, and as no variant.
    tenant = make_tenant(db)
    manager = make_actor(db, tenant, Role.manager)
    campaign = create_campaign(db, manager, name="Old", channel="sms")
    with db.session(tenant_id=tenant) as session, session.begin():
        session.execute(
            update(Campaign).where(Campaign.id == campaign.id).values(
                steps=type_coerce(["first", {"delay_hours": "x", "prompt": "P"}], JSON),
                variants=type_coerce([{"prompt": "nameless"}, 7, {"name": "B"}], JSON),
            )
        )
    again = get_campaign(db, manager, campaign.id)
    assert again.steps == (Step(), Step(0, "P"))
    assert again.variants == (Variant("B"),)


def test_typed_values_and_their_json_round_trip() -> None:
    steps = (Step(0), Step(72, "Follow up."))
    variants = (Variant("A", "x"), Variant("B", "y", weight=100))
    assert steps_from_json([s.as_json() for s in steps]) == steps
    assert variants_from_json([v.as_json() for v in variants]) == variants
    assert check_steps([s.as_json() for s in steps]) == steps
    assert check_variants([v.as_json() for v in variants]) == variants
    assert check_steps(None) == check_steps([]) == (Step(),)
