"""The Campaigns page's preview of any step and variant, and merge fields in the editor."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest

from core.campaigns import create_campaign, get_campaign
from core.db import Database
from core.models import Role
from tests.factories import insert_leads, make_actor, make_tenant
from tests.pages.conftest import PageFactory

PAGE = "pages/campaigns.py"


def _button(app: AppTest, key: str) -> Any:
    return next(b for b in app.button if b.key == key)


def test_preview_any_step_and_variant_with_the_filled_instructions(
    db: Database, open_page: PageFactory
) -> None:
    tenant = make_tenant(db)
    insert_leads(db, tenant, 2, industry="Software", custom_fields={"plan": "Pro"})
    manager = make_actor(db, tenant, Role.manager)
    campaign = create_campaign(
        db, manager, name="A/B", channel="sms", system_prompt="Write to {first_name} about {custom.plan}.",
        variants=[{"name": "A", "prompt": "Keep it brief."}, {"name": "B", "prompt": "End with a question."}],
        steps=[{"delay_hours": 0}, {"delay_hours": 48, "prompt": "Open with a question about {company}."}],
    ).id
    app = open_page(PAGE, manager)
    key = f"cmp{campaign}_preview"
    assert app.selectbox(key=f"{key}_step").options == ["First touch", "Follow-up 1 (48 h later)"]
    assert app.selectbox(key=f"{key}_variant").options == ["The lead's own variant", "Variant A", "Variant B"]
    drafts = {}
    for step in (0, 1):
        for variant in ("A", "B"):
            app.selectbox(key=f"{key}_step").set_value(step)
            app.selectbox(key=f"{key}_variant").set_value(variant)
            _button(app, f"{key}_run").click().run()
            assert not app.exception and not app.error
            where = "first touch" if step == 0 else "follow-up 1"
            assert f"**Draft** ({where}, variant {variant})" in [m.value for m in app.markdown]
            drafts[step, variant] = app.code[0].value
            instructions = app.code[1].value
            assert 'Write to "Lead0" about "Pro".' in instructions
            assert f"Variant {variant}:" in instructions
            if step:
                assert 'This is follow-up 1: Open with a question about "Company 0".' in instructions
    assert len(set(drafts.values())) == 4
    assert "Is getting more replies" in drafts[0, "B"] and "Is getting more replies" not in drafts[0, "A"]


def test_the_editor_names_an_unknown_merge_field(db: Database, open_page: PageFactory) -> None:
    tenant = make_tenant(db)
    manager = make_actor(db, tenant, Role.manager)
    campaign = create_campaign(db, manager, name="Fields", channel="sms").id
    app = open_page(PAGE, manager)
    assert any("{custom.NAME}" in c.value for c in app.caption)
    app.text_area(key=f"cmp{campaign}_system_prompt").input("Write to {frist_name}.")
    _button(app, f"cmp{campaign}_save").click().run()
    assert not app.exception
    [error] = [e.value for e in app.error]
    assert error.startswith("The system prompt uses an unknown merge field {frist_name}; use {first_name}")
    assert get_campaign(db, manager, campaign).system_prompt != "Write to {frist_name}."
