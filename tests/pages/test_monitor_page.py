"""The Run monitor for every role: live figures, errors, one lead's trace, and the run controls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

import core.monitor
from core.campaigns import create_campaign
from core.db import Database
from core.errors import NotFound
from core.models import AuditLog, Campaign, CampaignLead, Lead, Role
from pages.monitor_sections import live
from tests.core.test_monitor import HOLIDAY_WAIT, hold_back
from tests.core.test_run_progress import seed_follow_ups
from tests.factories import SeededRun, make_actor, make_tenant, seed_run
from tests.pages.browser_widgets import keep_selectbox_labels_as_a_browser_does
from tests.pages.conftest import PageFactory, table
from tests.pages.markdown_checks import DIRECTIVE, IMAGE, LATEX, assert_shown_escaped

PAGE = "pages/monitor.py"


@pytest.fixture
def run(db: Database) -> SeededRun:
    """Four leads, two of them already run through the pipeline: the campaign is still running."""
    return seed_run(db, leads=4, process=2, budget_cap_microusd=5_000_000)


def _status(db: Database, campaign_id: int) -> str:
    with db.session(system=True, read_only=True) as session:
        return str(session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


def _texts(app: object) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption]  # type: ignore[attr-defined]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("role", list(Role))
def test_every_role_watches_the_run(open_page: PageFactory, db: Database, run: SeededRun,
                                    role: Role) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, role, f"user-{role.value}"))
    assert not app.exception and not app.error
    assert app.title[0].value == "Run monitor"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Workers alive"] == "0"
    assert metrics["Spend"].startswith("$")
    assert "**Running** · 4 leads enrolled" in _texts(app)
    assert app.get("progress")[0].proto.text == "First touch: 2 sent · 2 going out now"
    controls = {b.label for b in app.button}
    if role == Role.analyst:
        assert not controls & {"Pause", "Resume", "Cancel campaign…", "Retry failed leads (0)"}
        assert "Your role watches runs" in _texts(app)
    else:
        assert {"Pause", "Resume", "Cancel campaign…", "Retry failed leads (0)"} <= controls


def test_pause_then_resume_submit_to_core(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.button(key="monitor_pause").click().run()
    assert not app.exception
    assert _status(db, run.campaign_id) == "paused"
    assert "Paused 'Autumn SMS'" in app.success[0].value
    app.button(key="monitor_resume").click().run()
    assert _status(db, run.campaign_id) == "running"


def test_cancel_asks_first(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.button(key="monitor_cancel").click().run()
    assert "Cancel 'Autumn SMS' for good?" in app.warning[0].value
    assert _status(db, run.campaign_id) == "running"
    app.button(key="monitor_cancel_keep").click().run()
    assert not app.warning and _status(db, run.campaign_id) == "running"
    app.button(key="monitor_cancel").click().run()
    app.button(key="monitor_cancel_confirm").click().run()
    assert not app.exception
    assert _status(db, run.campaign_id) == "cancelled"
    with db.session(system=True, read_only=True) as session:
        open_leads = session.scalars(select(CampaignLead.status).where(
            CampaignLead.campaign_id == run.campaign_id, CampaignLead.status == "pending")).all()
    assert open_leads == []


def test_resuming_over_budget_is_a_message(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id)
                        .values(status="paused", budget_cap_microusd=1, spent_microusd=2))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.button(key="monitor_resume").click().run()
    assert not app.exception
    assert "raise the cap before resuming" in app.error[0].value
    assert _status(db, run.campaign_id) == "paused"


def test_errors_are_grouped_and_a_lead_drills_down(open_page: PageFactory, db: Database,
                                                   run: SeededRun) -> None:
    failed = run.campaign_lead_ids[3]
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id == failed)
                        .values(status="failed", error="number is not mobile"))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    errors = table(app, "monitor_errors")
    assert list(errors["reason"]) == ["number is not mobile"]
    sent = next(i for i, outcome in run.outcomes.items() if outcome == "sent")
    app.number_input(key="monitor_lead_id").set_value(sent).run()
    assert not app.exception and not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Cost"].startswith("$")
    assert "Trace id:" in _texts(app)
    log = table(app, "monitor_lead_log")
    assert "send" in set(log["node"])
    assert app.code[0].value  # the sent message


def test_an_unknown_lead_is_a_message(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    app.number_input(key="monitor_lead_id").set_value(999).run()
    assert "No lead 999" in app.error[0].value


def test_no_campaign_yet(open_page: PageFactory, db: Database) -> None:
    app = open_page(PAGE, make_actor(db, make_tenant(db), Role.analyst, "ann"))
    assert not app.exception
    assert "No campaigns yet" in app.info[0].value


@pytest.mark.parametrize(("status", "refreshes"), [("running", True), ("scheduled", True),
                                                   ("paused", False), ("completed", False)])
def test_refreshes_only_while_live(open_page: PageFactory, db: Database, run: SeededRun,
                                   status: str, refreshes: bool) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id).values(status=status))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    assert not app.exception
    assert ("every 2 s while the run is live" in _texts(app)) is refreshes


def test_lead_and_provider_values_reach_the_markdown_escaped(open_page: PageFactory, db: Database,
                                                             run: SeededRun) -> None:
    target = run.campaign_lead_ids[0]
    with db.session(system=True) as session, session.begin():
        lead_id = select(CampaignLead.lead_id).where(CampaignLead.id == target).scalar_subquery()
        session.execute(update(Lead).where(Lead.id == lead_id)
                        .values(first_name=IMAGE, company=DIRECTIVE))
        session.execute(update(CampaignLead).where(CampaignLead.id == target).values(
            status_reason=f"reason {LATEX}", error=f"provider said {IMAGE}"))
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id)
                        .values(status="paused", status_reason=f"paused: {DIRECTIVE}"))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.number_input(key="monitor_lead_id").set_value(target).run()
    assert_shown_escaped(app, IMAGE, DIRECTIVE, f"reason {LATEX}", f"provider said {IMAGE}",
                         f"paused: {DIRECTIVE}")


def _fail(db: Database, campaign_lead_ids: list[int], error: str) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.id.in_(campaign_lead_ids))
                        .values(status="failed", error=error, attempts=5))


@pytest.mark.parametrize("role", [Role.analyst, Role.manager])
def test_an_automatic_pause_shows_its_reason(open_page: PageFactory, db: Database, run: SeededRun,
                                             role: Role) -> None:
    reason = ("OpenAI refused the API key (401 invalid_api_key): set a valid OPENAI_API_KEY, then "
              "resume the campaign")
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id)
                        .values(status="paused", status_reason=reason))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, role, f"user-{role.value}"))
    assert not app.exception
    [banner] = [w.value for w in app.warning]
    assert banner.startswith("Paused:") and reason in banner.replace("\\", "")


def test_a_reason_is_shown_as_text_not_markdown(open_page: PageFactory, db: Database,
                                                 run: SeededRun) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id)
                        .values(status="paused", status_reason="failed: ![x](http://evil.example/p)"))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    [banner] = [w.value for w in app.warning]
    assert "![x](" not in banner and "failed: ![x](http://evil.example/p)" in banner.replace("\\", "")


def test_retry_failed_leads_asks_first_then_puts_them_back(open_page: PageFactory, db: Database,
                                                          run: SeededRun) -> None:
    _fail(db, run.campaign_lead_ids[2:], "Twilio refused the account (error 20003)")
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id)
                        .values(status="paused", status_reason="paused after 10 provider failures"))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.button(key="monitor_retry").click().run()
    assert "Put 2 failed leads of 'Autumn SMS' back" in app.warning[-1].value
    app.button(key="monitor_retry_keep").click().run()
    assert _statuses(db, run.campaign_id).count("failed") == 2
    app.button(key="monitor_retry").click().run()
    app.button(key="monitor_retry_confirm").click().run()
    assert not app.exception and not app.error
    assert _statuses(db, run.campaign_id).count("failed") == 0
    assert "2 failed leads are pending again" in app.success[0].value
    assert "resume" in app.success[0].value  # the campaign is still paused
    assert {b.label for b in app.button} >= {"Retry failed leads (0)"}


def test_retry_is_disabled_with_no_failed_lead(open_page: PageFactory, db: Database,
                                               run: SeededRun) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    assert app.button(key="monitor_retry").disabled


def _statuses(db: Database, campaign_id: int) -> list[str]:
    with db.session(system=True, read_only=True) as session:
        return list(session.scalars(select(CampaignLead.status)
                                    .where(CampaignLead.campaign_id == campaign_id)))


def _audit(db: Database, tenant_id: int) -> list[tuple[str, str | None]]:
    with db.session(system=True, read_only=True) as session:
        rows = session.execute(
            select(AuditLog.action, AuditLog.entity_id)
            .where(
                AuditLog.tenant_id == tenant_id,
                AuditLog.entity == "campaign",
                AuditLog.action.in_(("pause", "resume")),
            )
            .order_by(AuditLog.id)
        ).all()
    return [(str(action), entity_id) for action, entity_id in rows]


def test_pause_then_resume_act_on_the_picked_campaign_among_several(
    open_page: PageFactory, db: Database, run: SeededRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep_selectbox_labels_as_a_browser_does(monkeypatch)
    tenant_id = run.owner.tenant_id
    other = seed_run(db, tenant_id=tenant_id, name="Winter SMS", process=0).campaign_id
    newest = seed_run(db, tenant_id=tenant_id, name="Spring SMS", process=0).campaign_id
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == newest).values(status="paused"))
    app = open_page(PAGE, make_actor(db, tenant_id, Role.manager, "mia"))
    app.selectbox(key="monitor_campaign").select(run.campaign_id).run()
    app.button(key="monitor_pause").click().run()
    assert not app.exception
    assert app.selectbox(key="monitor_campaign").value == run.campaign_id
    app.button(key="monitor_resume").click().run()
    assert not app.exception
    assert app.selectbox(key="monitor_campaign").value == run.campaign_id
    assert _status(db, run.campaign_id) == "running"
    assert (_status(db, other), _status(db, newest)) == ("running", "paused")
    assert _audit(db, tenant_id) == [("pause", str(run.campaign_id)), ("resume", str(run.campaign_id))]


def test_opens_on_a_running_campaign_not_the_newest_draft(
    open_page: PageFactory, db: Database, run: SeededRun
) -> None:
    create_campaign(db, run.owner, name="Draft SMS", channel="sms")
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    assert app.selectbox(key="monitor_campaign").value == run.campaign_id


def _all_text(app: object) -> str:
    """Every text and table cell on screen, to look for raw state names."""
    texts = [_texts(app)] + [str(e.value) for kind in ("warning", "info", "error", "success")
                             for e in getattr(app, kind)]
    texts += [str(m.label) + " " + str(m.value) for m in app.metric]  # type: ignore[attr-defined]
    texts += [p.proto.text for p in app.get("progress")]  # type: ignore[attr-defined]
    texts += [s.proto.options.__repr__() for s in app.selectbox]  # type: ignore[attr-defined]
    for frame in app.dataframe:  # type: ignore[attr-defined]
        texts.append(frame.value.to_csv())
    return "\n".join(texts)


def test_follow_ups_show_per_step_progress_and_when_they_are_due(open_page: PageFactory,
                                                                 db: Database) -> None:
    follow_ups = seed_follow_ups(db, sent=7, deferred=11, now=datetime.now(UTC))
    app = open_page(PAGE, make_actor(db, follow_ups.owner.tenant_id, Role.analyst, "ann"))
    assert not app.exception and not app.error
    first, follow_up = (p.proto.text for p in app.get("progress")[:2])
    assert first.startswith("First touch: 7 sent · 11 deferred (send window, contact cap, public holiday, "
                            "send rate or budget) · next try in 3 h (")
    assert follow_up.startswith("Follow-up 1: 0 sent · 7 waiting for their delay · "
                                "next follow-up 1 due in 48 h (")
    assert "0 of 18" not in _all_text(app)
    assert "Nothing to send right now: the next lead is due in 3 h" in app.info[0].value
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Sent in the last minute"], metrics["Sent in the last 5 minutes"]) == ("7", "7")


def test_no_raw_state_name_is_shown(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    with db.session(system=True) as session, session.begin():
        for campaign_lead_id, status in zip(run.campaign_lead_ids[2:], ("awaiting_approval", "in_progress"),
                                            strict=True):
            session.execute(update(CampaignLead).where(CampaignLead.id == campaign_lead_id)
                            .values(status=status))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.selectbox(key="monitor_lead_recent").select(run.campaign_lead_ids[2]).run()
    shown = _all_text(app)
    assert "waiting for review" in shown and "being written" in shown
    for raw in ("awaiting_approval", "in_progress", "empty"):
        assert raw not in shown


def test_a_paused_run_shows_no_eta(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    assert {m.label: m.value for m in app.metric}["ETA"] != "n/a"
    app.button(key="monitor_pause").click().run()
    assert {m.label: m.value for m in app.metric}["ETA"] == "n/a"


def test_after_cancel_the_status_says_cancelled_not_raise_the_cap(open_page: PageFactory, db: Database,
                                                                  run: SeededRun) -> None:
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == run.campaign_id).values(
            status="paused", status_reason="budget cap of $0.0050 reached ($0.0048 spent); raise the cap "
                                           "and resume the campaign"))
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    app.button(key="monitor_cancel").click().run()
    app.button(key="monitor_cancel_confirm").click().run()
    shown = _all_text(app)
    assert "raise the cap" not in shown.replace("\\", "")
    assert "**Cancelled: 2 sent, 2 cancelled** · 4 leads enrolled" in shown


def test_opens_on_the_most_recently_active_run(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    """The newer running campaign has been quiet; the older one worked a lead a moment ago."""
    newer = seed_run(db, tenant_id=run.owner.tenant_id, name="Winter SMS", process=0).campaign_id
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).where(CampaignLead.campaign_id == newer)
                        .values(updated_at=datetime.now(UTC) - timedelta(hours=2)))
        session.execute(update(Campaign).where(Campaign.id == newer)
                        .values(started_at=datetime.now(UTC) - timedelta(hours=2)))
    create_campaign(db, run.owner, name="Draft SMS", channel="sms")
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    assert app.selectbox(key="monitor_campaign").value == run.campaign_id


def test_a_sub_cent_cap_shows_as_it_is(open_page: PageFactory, db: Database) -> None:
    capped = seed_run(db, leads=2, process=0, budget_cap_microusd=5_000)
    app = open_page(PAGE, make_actor(db, capped.owner.tenant_id, Role.analyst, "ann"))
    bars = [p.proto.text for p in app.get("progress")]
    assert "0% of the $0.0050 cap" in bars


def test_the_monitor_says_why_leads_wait(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    hold_back(db, run)
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.manager, "mia"))
    assert not app.exception and not app.error
    assert "**Why leads wait**" in _texts(app)
    waits = table(app, "monitor_waits")
    rows = list(waits.itertuples(index=False))
    assert [r.leads for r in rows] == [2, 1]
    assert rows[0].reason.startswith("contact cap reached (1 message per lead a day, all campaigns together)")
    assert rows[0].reason.endswith("(and 1 more like it, differing only in numbers such as the due time)")
    assert rows[1].reason == HOLIDAY_WAIT


GONE = "No campaign 7: it was deleted meanwhile."


@pytest.mark.parametrize(("where", "service"), [
    (live, "campaign_progress"),
    (live, "list_workers"),
    (core.monitor, "errors_by_reason"),
    (core.monitor, "waits_by_reason"),
    (core.monitor, "recent_events"),
    (core.monitor, "recent_enrolments"),
    (core.monitor, "enrolment_trace"),
])
def test_a_live_or_lead_read_that_fails_is_a_message_not_a_traceback(
    open_page: PageFactory, db: Database, run: SeededRun, monkeypatch: pytest.MonkeyPatch,
    where: object, service: str,
) -> None:
    def vanish(*args: object, **kwargs: object) -> None:
        raise NotFound(GONE)

    monkeypatch.setattr(where, service, vanish)
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    if service == "enrolment_trace":  # read once a lead is picked
        app.number_input(key="monitor_lead_id").set_value(run.campaign_lead_ids[0]).run()
    assert not app.exception
    assert [e.value for e in app.error] == [GONE]
    assert app.subheader[-1].value == "One lead"  # the page went on past the failed section
