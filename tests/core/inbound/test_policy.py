"""A campaign's reply stop classes: checked, stored in the classes' order, editable while it runs."""

from __future__ import annotations

import pytest

from core.campaign_runs import start_campaign
from core.campaigns import create_campaign, get_campaign, update_campaign
from core.db import Database
from core.errors import ValidationError
from core.models import DEFAULT_REPLY_STOP_CLASSES, Role
from tests.factories import insert_leads, make_actor, make_tenant


def test_a_new_campaign_stops_on_every_human_answer_but_an_absence(db: Database) -> None:
    actor = make_actor(db, make_tenant(db), Role.manager)
    campaign = create_campaign(db, actor, name="Spring", channel="sms")
    assert campaign.reply_stop_classes == DEFAULT_REPLY_STOP_CLASSES
    assert "out_of_office" not in campaign.reply_stop_classes


def test_stop_classes_are_checked_and_kept_in_order(db: Database) -> None:
    tenant_id = make_tenant(db)
    insert_leads(db, tenant_id, 2)
    actor = make_actor(db, tenant_id, Role.manager)
    campaign = create_campaign(db, actor, name="Spring", channel="sms")
    start_campaign(db, actor, campaign.id)
    update_campaign(db, actor, campaign.id, reply_stop_classes=["auto_reply", "interested", "unsubscribe"])
    # An opt-out always stops everything: it is accepted but never stored as a choice.
    assert get_campaign(db, actor, campaign.id).reply_stop_classes == ("interested", "auto_reply")
    with pytest.raises(ValidationError, match="unknown reply class maybe"):
        update_campaign(db, actor, campaign.id, reply_stop_classes=["maybe"])
