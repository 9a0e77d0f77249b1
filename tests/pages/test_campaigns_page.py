"""The Campaigns page: the list, the editor, the preview and the run controls, for every role."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from core.campaign_runs import start_campaign
from core.campaign_shape import Step, Variant
from core.campaigns import create_campaign, get_campaign, list_campaigns
from core.db import Database
from core.gate import spend_month
from core.models import AuditLog, Campaign, Role, Tenant, TenantSpend
from core.permissions import Actor
from tests.factories import insert_leads, make_actor, make_tenant
from tests.pages.browser_widgets import keep_selectbox_labels_as_a_browser_does
from tests.pages.conftest import PageFactory
from tests.pages.conftest import table as page_table
from tests.pages.markdown_checks import DIRECTIVE, IMAGE, LATEX, assert_shown_escaped

PAGE = "pages/campaigns.py"
RUN_BUTTONS = ("start", "pause", "resume", "cancel", "schedule")


def _button(app: AppTest, key: str) -> Any:
    return next(b for b in app.button if b.key == key)


def _button_keys(app: AppTest) -> set[str]:
    return {str(b.key) for b in app.button}


def _errors(app: AppTest) -> list[str]:
    return [e.value for e in app.error]


@pytest.fixture
def tenant(db: Database) -> int:
    tenant_id = make_tenant(db)
    insert_leads(db, tenant_id, 3, industry="Software")
    insert_leads(db, tenant_id, 2, start=3, industry="Retail", country="CA")
    return tenant_id


@pytest.fixture
def manager(db: Database, tenant: int) -> Actor:
    return make_actor(db, tenant, Role.manager)


def _draft(db: Database, actor: Actor, **fields: Any) -> int:
    return create_campaign(db, actor, name=fields.pop("name", "Spring push"),
                           channel=fields.pop("channel", "sms"), **fields).id


def test_analyst_reads_but_cannot_edit_preview_or_run(
    db: Database, tenant: int, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager)
    start_campaign(db, manager, campaign_id)
    analyst = make_actor(db, tenant, Role.analyst)
    app = open_page(PAGE, analyst)
    assert not app.exception
    table = page_table(app, "campaigns_list")
    assert list(table["name"]) == ["Spring push"] and list(table["status"]) == ["running"]
    assert list(table["enrolled"]) == [5]
    # No "new campaign" option, no save, no run buttons, no preview tab; the fields are disabled.
    assert app.selectbox(key="campaigns_selected").options == [f"#{campaign_id} Spring push (running)"]
    assert not any(k.endswith(("_save", *(f"_{b}" for b in RUN_BUTTONS))) for k in _button_keys(app))
    assert [t.label for t in app.tabs] == ["Run", "Editor"]
    assert app.text_input(key=f"cmp{campaign_id}_name").disabled
    assert app.text_area(key=f"cmp{campaign_id}_system_prompt").disabled
    captions = " ".join(c.value for c in app.caption)
    assert "Your role can read campaigns but not change them" in captions
    assert "cannot start, pause or cancel" in captions
    assert app.get("progress")


def test_manager_creates_a_campaign_from_the_form(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    app = open_page(PAGE, manager)
    assert app.header[0].value == "New campaign"
    app.text_input(key="cmpnew_name").input("Software push")
    app.multiselect(key="cmpnew_audience_industries").select("Software").run()
    # The live count follows the filter before anything is saved.
    assert any("**3 leads** match now" in m.value for m in app.markdown)
    app.multiselect(key="cmpnew_audience_countries").select("CA").run()
    assert any("**0 leads** match now" in m.value for m in app.markdown)
    app.multiselect(key="cmpnew_audience_countries").unselect("CA").run()
    _button(app, "cmpnew_step_add").click().run()
    app.number_input(key="cmpnew_step_delay_1").set_value(48)
    app.text_area(key="cmpnew_step_prompt_1").input("A short, friendly nudge.")
    _button(app, "cmpnew_variant_add").click().run()
    _button(app, "cmpnew_variant_add").click().run()
    app.text_area(key="cmpnew_variant_prompt_0").input("Lead with the savings.")
    app.text_area(key="cmpnew_variant_prompt_1").input("Lead with the time saved.")
    app.slider(key="cmpnew_temperature").set_value(0.3)
    app.number_input(key="cmpnew_sends_per_minute").set_value(30)
    app.number_input(key="cmpnew_budget_usd").set_value(12.5)
    app.number_input(key="cmpnew_max_sms_segments").set_value(3)
    app.checkbox(key="cmpnew_approval_required").check()
    app.checkbox(key="cmpnew_window_override").check().run()
    app.checkbox(key="cmpnew_window_weekdays").check()
    _button(app, "cmpnew_save").click().run()
    assert not app.exception and not _errors(app)
    assert "created as a draft" in app.success[0].value
    [saved] = list_campaigns(db, manager)
    assert (saved.name, saved.channel, saved.status) == ("Software push", "sms", "draft")
    assert saved.audience == {"industries": ["Software"]}
    assert saved.steps == (Step(0), Step(48, "A short, friendly nudge."))
    assert saved.variants == (Variant("A", "Lead with the savings."),
                              Variant("B", "Lead with the time saved."))
    assert saved.temperature == pytest.approx(0.3) and saved.model == "gpt-4o-mini"
    assert (saved.sends_per_minute, saved.budget_cap_microusd, saved.max_sms_segments) == (30, 12_500_000, 3)
    assert saved.approval_required and not saved.research_web
    assert saved.send_window == {"start": "08:00", "end": "21:00", "weekdays_only": True}
    # The new campaign is open now.
    assert app.header[0].value == "Software push · draft"


def test_an_empty_name_is_refused_with_a_message(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    app = open_page(PAGE, manager)
    _button(app, "cmpnew_save").click().run()
    assert not app.exception
    assert _errors(app) == ["A campaign needs a name."]
    assert list_campaigns(db, manager) == []


def test_manager_edits_a_draft(db: Database, manager: Actor, open_page: PageFactory) -> None:
    campaign_id = _draft(db, manager, channel="email")
    app = open_page(PAGE, manager)
    key = f"cmp{campaign_id}_"
    app.text_area(key=f"{key}system_prompt").input("Write one warm paragraph.")
    app.selectbox(key=f"{key}model").set_value("gpt-4o")
    app.checkbox(key=f"{key}research_web").check()
    _button(app, f"{key}save").click().run()
    assert not _errors(app) and "saved" in app.success[0].value
    saved = get_campaign(db, manager, campaign_id)
    assert (saved.system_prompt, saved.model, saved.research_web) == (
        "Write one warm paragraph.", "gpt-4o", True)
    # Empty rate and budget fields stay "no limit" and "no cap".
    assert app.number_input(key=f"{key}budget_usd").value is None
    assert (saved.sends_per_minute, saved.budget_cap_microusd) == (None, None)


def test_a_running_campaign_locks_what_only_a_draft_may_change(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager)
    key = f"cmp{campaign_id}_"
    app = open_page(PAGE, manager)
    app.text_area(key=f"{key}system_prompt").input("Something else entirely.").run()
    # Someone starts the campaign while this editor is open; the edit is then refused.
    start_campaign(db, manager, campaign_id)
    app.run()
    assert app.text_area(key=f"{key}system_prompt").disabled
    assert not app.text_input(key=f"{key}name").disabled
    assert any("only its name and description can change" in c.value for c in app.caption)
    _button(app, f"{key}save").click().run()
    assert not app.exception
    assert any("system_prompt cannot be changed now" in e for e in _errors(app))
    assert get_campaign(db, manager, campaign_id).system_prompt != "Something else entirely."
    # The name still can change while it runs.
    app = open_page(PAGE, manager)
    app.text_input(key=f"{key}name").input("Renamed")
    _button(app, f"{key}save").click().run()
    assert not _errors(app)
    assert get_campaign(db, manager, campaign_id).name == "Renamed"


def test_preview_shows_facts_draft_segments_and_cost(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager, audience={"industries": ["Software"]})
    app = open_page(PAGE, manager)
    key = f"cmp{campaign_id}_preview"
    picker = app.selectbox(key=f"{key}_lead")
    assert len(picker.options) == 3
    app.text_input(key=f"{key}_search").input("Lead1 ").run()
    assert [o for o in app.selectbox(key=f"{key}_lead").options] == [
        o for o in picker.options if "Lead1 " in o]
    _button(app, f"{key}_run").click().run()
    assert not app.exception and not _errors(app)
    facts = page_table(app, "preview_facts")
    assert {"fact", "source"} <= set(facts.columns) and len(facts) > 0
    draft = app.code[0].value
    assert "Lead1" in draft and draft.endswith("Reply STOP to opt out")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Length"] == f"{len(draft):,} characters"
    assert metrics["Encoding"] == "GSM-7" and metrics["SMS segments"] in ("1", "2")
    assert metrics["Cost of this preview"].startswith("$")
    assert "The guard passed this draft." in [s.value for s in app.success]


def test_preview_without_the_model_key_says_which_setting_is_missing(
    db: Database, manager: Actor, open_page: PageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_LLM_PROVIDER", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    campaign_id = _draft(db, manager, audience={"industries": ["Software"]})
    app = open_page(PAGE, manager)
    # The page itself opens: only the preview needs the model.
    assert not app.exception and not _errors(app)
    _button(app, f"cmp{campaign_id}_preview_run").click().run()
    assert not app.exception
    assert any("The preview cannot run" in e and "OPENAI_API_KEY" in e for e in _errors(app))
    assert not app.code  # no draft shown


def test_preview_past_the_monthly_budget_is_refused_with_the_reason(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager, audience={"industries": ["Software"]})
    with db.session(system=True) as session, session.begin():
        session.execute(
            update(Tenant).where(Tenant.id == manager.tenant_id).values(monthly_budget_microusd=1_000_000)
        )
        session.add(TenantSpend(tenant_id=manager.tenant_id, month=spend_month(datetime.now(UTC)),
                                spent_microusd=1_000_000))
    app = open_page(PAGE, manager)
    _button(app, f"cmp{campaign_id}_preview_run").click().run()
    assert not app.exception and not app.code  # no draft, no traceback: the reason
    refusal = "The preview was not run: the monthly budget of $1.00 reached"
    # Error texts reach the page Markdown-escaped ("\\$1.00"): compare the words.
    assert any(e.replace("\\", "").startswith(refusal) for e in _errors(app))


def test_cost_estimate_for_the_audience(db: Database, manager: Actor, open_page: PageFactory) -> None:
    _draft(db, manager, steps=[{"delay_hours": 0}, {"delay_hours": 24}])
    app = open_page(PAGE, manager)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Leads"] == "5"
    assert {"Per lead", "Expected", "At most"} <= set(metrics)


def test_start_pause_resume_and_a_confirmed_cancel(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager)
    key = f"cmp{campaign_id}_run"
    app = open_page(PAGE, manager)
    _button(app, f"{key}_start").click().run()
    assert get_campaign(db, manager, campaign_id).status == "running"
    assert "started" in app.success[0].value
    assert {m.label: m.value for m in app.metric}["Enrolled"] == "5"
    _button(app, f"{key}_pause").click().run()
    assert get_campaign(db, manager, campaign_id).status == "paused"
    _button(app, f"{key}_resume").click().run()
    assert get_campaign(db, manager, campaign_id).status == "running"
    _button(app, f"{key}_cancel").click().run()
    # One click only asks; the campaign runs until the confirmation.
    assert get_campaign(db, manager, campaign_id).status == "running"
    assert "cannot be undone" in app.warning[0].value
    _button(app, f"{key}_cancel_keep").click().run()
    assert f"{key}_cancel_confirm" not in _button_keys(app)
    _button(app, f"{key}_cancel").click().run()
    _button(app, f"{key}_cancel_confirm").click().run()
    assert not _errors(app)
    assert get_campaign(db, manager, campaign_id).status == "cancelled"
    assert not _button_keys(app) & {f"{key}_{b}" for b in RUN_BUTTONS}


def test_schedule_and_its_errors(db: Database, manager: Actor, open_page: PageFactory) -> None:
    # The tenant's clock is its country's (US: New York) until an admin chooses another.
    new_york = ZoneInfo("America/New_York")
    campaign_id = _draft(db, manager)
    key = f"cmp{campaign_id}_run"
    app = open_page(PAGE, manager)
    today = datetime.now(new_york).date()
    app.date_input(key=f"{key}_day").set_value(today - timedelta(days=1))
    _button(app, f"{key}_schedule").click().run()
    assert not app.exception
    assert any("The start time is in the past" in e for e in _errors(app))
    assert get_campaign(db, manager, campaign_id).status == "draft"
    app.date_input(key=f"{key}_day").set_value(today + timedelta(days=1))
    _button(app, f"{key}_schedule").click().run()
    saved = get_campaign(db, manager, campaign_id)
    assert saved.status == "scheduled" and saved.scheduled_at is not None
    assert saved.scheduled_at.astimezone(new_york).date() == today + timedelta(days=1)


def test_the_schedule_is_entered_and_shown_in_the_tenants_time_zone(
    db: Database, tenant: int, manager: Actor, open_page: PageFactory
) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant).values(time_zone="Europe/Berlin"))
    campaign_id = _draft(db, manager)
    key = f"cmp{campaign_id}_run"
    app = open_page(PAGE, manager)
    assert app.date_input(key=f"{key}_day").label == "Start on (Europe/Berlin)"
    assert app.time_input(key=f"{key}_time").label == "at (Europe/Berlin)"
    # A day in winter (CET, UTC+1), so 09:00 in Berlin is 08:00 UTC.
    day = date(datetime.now(UTC).year + 1, 1, 15)
    app.date_input(key=f"{key}_day").set_value(day)
    app.time_input(key=f"{key}_time").set_value(time(9, 0))
    _button(app, f"{key}_schedule").click().run()
    assert not app.exception and not _errors(app)
    saved = get_campaign(db, manager, campaign_id)
    assert saved.scheduled_at == datetime.combine(day, time(8, 0), tzinfo=UTC)
    shown = f"{day:%Y-%m-%d} 09:00 Europe/Berlin"
    assert any(shown in s.value for s in app.success)
    assert f"Starts at {shown}." in [c.value for c in app.caption]


def test_a_send_window_across_midnight_is_accepted_and_shown_in_words(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager)
    key = f"cmp{campaign_id}_"
    app = open_page(PAGE, manager)
    app.checkbox(key=f"{key}window_override").check().run()
    app.time_input(key=f"{key}window_start").set_value(time(22, 0))
    app.time_input(key=f"{key}window_end").set_value(time(6, 0)).run()
    words = "Messages go out 22:00 to 06:00 the next day, every day, in each recipient's local time."
    assert words in [c.value for c in app.caption]
    _button(app, f"{key}save").click().run()
    assert not app.exception and not _errors(app)
    saved = get_campaign(db, manager, campaign_id)
    assert saved.send_window == {"start": "22:00", "end": "06:00", "weekdays_only": False}


def test_resuming_over_the_budget_cap_is_explained(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    from core.campaign_runs import pause_campaign
    from core.campaigns import update_campaign

    campaign_id = _draft(db, manager)  # a $0 cap would not start: it is set once paused
    start_campaign(db, manager, campaign_id)
    pause_campaign(db, manager, campaign_id)
    update_campaign(db, manager, campaign_id, budget_cap_microusd=0)
    app = open_page(PAGE, manager)
    assert app.number_input(key=f"cmp{campaign_id}_budget_usd").value == 0.0
    _button(app, f"cmp{campaign_id}_run_resume").click().run()
    assert not app.exception
    assert any("raise the cap before resuming" in e for e in _errors(app))
    assert get_campaign(db, manager, campaign_id).status == "paused"


def test_email_preview_says_why_a_lead_gets_nothing_then_shows_the_subject(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    from core.models import Tenant

    campaign_id = _draft(db, manager, channel="email")
    app = open_page(PAGE, manager)
    key = f"cmp{campaign_id}_preview"
    _button(app, f"{key}_run").click().run()
    assert not app.exception
    # The Run tab's pre-flight warns too; the preview's own warning says why.
    assert any("no postal address" in w.value for w in app.warning) and not app.code
    with db.session(tenant_id=manager.tenant_id) as session, session.begin():
        tenant_row = session.get(Tenant, manager.tenant_id)
        assert tenant_row is not None
        tenant_row.postal_address = "1 Main St, Springfield"
    _button(app, f"{key}_run").click().run()
    assert not app.exception and not _errors(app)
    subject = next(t for t in app.text_input if t.label == "Subject")
    assert subject.value and subject.disabled
    assert "1 Main St" in app.code[0].value
    assert "SMS segments" not in {m.label for m in app.metric}


def test_campaign_names_and_reasons_reach_the_markdown_escaped(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    name = f"{IMAGE} {DIRECTIVE}"
    campaign_id = _draft(db, manager, name=name)
    app = open_page(PAGE, manager)
    assert_shown_escaped(app, name)  # the open campaign's header
    _button(app, f"cmp{campaign_id}_run_start").click().run()
    assert "started" in app.success[0].value
    assert_shown_escaped(app, name)  # the confirmation
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == campaign_id)
                        .values(status="paused", status_reason=f"paused: {LATEX}"))
    app.run()
    assert_shown_escaped(app, name, f"paused: {LATEX}")


def test_counts_and_articles_read_as_english(db: Database, tenant: int, manager: Actor,
                                             open_page: PageFactory) -> None:
    insert_leads(db, tenant, 1, start=5, industry="Logistics")
    app = open_page(PAGE, manager)
    app.radio(key="cmpnew_channel").set_value("email").run()
    app.multiselect(key="cmpnew_audience_industries").select("Logistics").run()
    assert any(m.value.startswith("**1 lead** matches now (not opted out, with an email address,")
               for m in app.markdown)
    app.multiselect(key="cmpnew_audience_industries").select("Software").run()
    assert any(m.value.startswith("**4 leads** match now") for m in app.markdown)
    _button(app, "cmpnew_variant_add").click().run()
    labels = {_button(app, key).label for key in ("cmpnew_variant_add", "cmpnew_variant_remove",
                                                  "cmpnew_step_add", "cmpnew_step_remove")}
    assert labels == {"Add a variant", "Remove the last variant", "Add a follow-up",
                      "Remove the last follow-up"}


def test_pause_then_resume_act_on_the_picked_campaign_among_several(
    db: Database, manager: Actor, open_page: PageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep_selectbox_labels_as_a_browser_does(monkeypatch)
    picked, other = _draft(db, manager, name="Spring push"), _draft(db, manager, name="Summer push")
    for campaign_id in (picked, other):
        start_campaign(db, manager, campaign_id)
    newest = _draft(db, manager, name="Autumn push")
    app = open_page(PAGE, manager)
    app.selectbox(key="campaigns_selected").select(picked).run()
    key = f"cmp{picked}_run"
    _button(app, f"{key}_pause").click().run()
    assert not _errors(app)
    assert app.selectbox(key="campaigns_selected").value == picked
    _button(app, f"{key}_resume").click().run()
    assert not _errors(app)
    assert app.selectbox(key="campaigns_selected").value == picked
    statuses = {c.id: c.status for c in list_campaigns(db, manager)}
    assert statuses == {picked: "running", other: "running", newest: "draft"}
    with db.session(system=True, read_only=True) as session:
        audited = session.execute(
            select(AuditLog.action, AuditLog.entity_id)
            .where(AuditLog.tenant_id == manager.tenant_id, AuditLog.action.in_(("pause", "resume")))
            .order_by(AuditLog.id)
        ).all()
    assert [tuple(row) for row in audited] == [("pause", str(picked)), ("resume", str(picked))]


def _checks(app: AppTest) -> dict[str, str]:
    """The Run tab's pre-flight lines, label -> the line (icon, label, words)."""
    lines = [m.value for m in app.markdown if m.value[:1] in ("✅", "⚠", "❌")]
    return {line.split("**")[1]: line for line in lines}


def test_the_run_tab_will_not_start_an_email_campaign_that_cannot_send(
    db: Database, tenant: int, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager, channel="email")
    app = open_page(PAGE, manager)
    checks = _checks(app)
    assert list(checks) == ["Sender", "Postal address", "Audience", "Budget cap"]
    assert checks["Postal address"].startswith("❌")
    assert "Admin > Settings" in checks["Postal address"].replace("\\", "")
    assert checks["Audience"].startswith("✅") and "5 leads will be enrolled" in checks["Audience"]
    start = _button(app, f"cmp{campaign_id}_run_start")
    assert start.disabled and _button(app, f"cmp{campaign_id}_run_schedule").disabled
    assert "Fix what is marked ❌" in app.warning[0].value
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant).values(postal_address="1 Main St"))
    app.run()
    assert _checks(app)["Postal address"].startswith("✅")
    _button(app, f"cmp{campaign_id}_run_start").click().run()
    assert get_campaign(db, manager, campaign_id).status == "running"


def test_a_scheduled_start_held_by_the_preflight_is_shown_with_its_checks(
    db: Database, tenant: int, manager: Actor, open_page: PageFactory
) -> None:
    from core.campaign_runs import schedule_campaign
    from core.campaign_ticks import start_due_campaigns

    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant).values(postal_address="1 Main St"))
    campaign_id = _draft(db, manager, channel="email")
    start_at = datetime.now(UTC) + timedelta(hours=1)
    schedule_campaign(db, manager, campaign_id, start_at)
    with db.session(system=True) as session, session.begin():
        session.execute(update(Tenant).where(Tenant.id == tenant).values(postal_address=None))
    assert start_due_campaigns(db, now=start_at) == []

    app = open_page(PAGE, manager)
    assert app.header[0].value.endswith("· draft")
    held = app.warning[0].value
    assert held.startswith("The scheduled start was held: there is no postal address")
    assert "then start or schedule it again" in held
    assert _checks(app)["Postal address"].startswith("❌")
    assert _button(app, f"cmp{campaign_id}_run_start").disabled


def test_the_run_tab_warns_when_the_estimate_is_far_above_the_cap(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    from core.pipeline.estimate import estimate_campaign_cost

    probe = _draft(db, manager, name="Probe")
    per_lead = estimate_campaign_cost(db, db.settings, manager, probe).cost_per_lead_microusd
    campaign_id = _draft(db, manager, name="Capped", budget_cap_microusd=per_lead)
    app = open_page(PAGE, manager)
    app.selectbox(key="campaigns_selected").select(campaign_id).run()
    budget = _checks(app)["Budget cap"]
    assert budget.startswith("⚠️") and "5.0 times" in budget and "after about 1 lead of 5" in budget
    assert not _button(app, f"cmp{campaign_id}_run_start").disabled


def test_an_all_failed_run_says_so_not_completed_with_a_full_bar(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    from core.models import CampaignLead

    campaign_id = _draft(db, manager)
    start_campaign(db, manager, campaign_id)
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).values(status="failed", error="no postal address"))
        session.execute(update(Campaign).values(status="completed"))
    app = open_page(PAGE, manager)
    assert app.header[0].value.endswith("· completed: 0 sent, 5 failed")
    assert list(page_table(app, "campaigns_list")["status"]) == ["completed: 0 sent, 5 failed"]
    [bar] = app.get("progress")  # the first touch's: nothing sent, not a full bar
    assert bar.proto.value == 0 and bar.proto.text == "First touch: 0 sent · 5 failed"


def test_a_sub_cent_cap_reads_the_same_in_the_field_the_list_and_the_run_tab(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager, budget_cap_microusd=5_000)
    start_campaign(db, manager, campaign_id)
    app = open_page(PAGE, manager)
    field = app.number_input(key=f"cmp{campaign_id}_budget_usd")
    assert field.value == 0.005 and field.proto.format % field.value == "0.0050"
    assert list(page_table(app, "campaigns_list")["budget"]) == ["$0.0050"]
    assert {m.label: m.value for m in app.metric}["Budget cap"] == "$0.0050"


def test_a_paused_run_over_its_cap_says_what_to_do_before_resume_is_clicked(
    db: Database, manager: Actor, open_page: PageFactory
) -> None:
    from core.campaign_runs import pause_campaign

    campaign_id = _draft(db, manager, budget_cap_microusd=5_000)
    start_campaign(db, manager, campaign_id)
    pause_campaign(db, manager, campaign_id, reason="budget cap of $0.0050 reached")
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).values(spent_microusd=5_100))
    app = open_page(PAGE, manager)
    assert any("The budget cap is spent ($0.0051 of $0.0050): raise the cap on the Editor tab, then resume"
               in w.value.replace("\\", "") for w in app.warning)


def test_a_running_campaign_chooses_which_replies_stop_its_sequence(
    db: Database, tenant: int, manager: Actor, open_page: PageFactory
) -> None:
    campaign_id = _draft(db, manager)
    start_campaign(db, manager, campaign_id)
    app = open_page(PAGE, manager)
    choice = app.multiselect(key=f"cmp{campaign_id}_reply_stop_classes")
    assert not choice.disabled  # a running campaign may change it: it is how replies are handled
    assert choice.value == ["interested", "question", "not_now", "not_interested", "referral",
                            "wrong_person", "unclassified"]
    choice.set_value(["not_interested", "out_of_office"]).run()
    _button(app, f"cmp{campaign_id}_save").click().run()
    assert not app.exception and not _errors(app)
    with db.session(tenant_id=tenant, read_only=True) as session:
        stored = session.scalar(select(Campaign.reply_stop_classes).where(Campaign.id == campaign_id))
    assert stored == ["not_interested", "out_of_office"]
