"""The Review queue: who may open it, drafts with sources and guard results, each action in core."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

import core.pipeline.review
from core.db import Database
from core.errors import Conflict, PermissionDenied
from core.models import CampaignLead, Lead, Role
from core.permissions import Actor
from pages.review_sections import draft, filters
from tests.factories import SeededRun, make_actor, seed_run
from tests.pages.conftest import PageFactory
from tests.pages.markdown_checks import DIRECTIVE, IMAGE, LATEX, assert_shown_escaped

PAGE = "pages/review.py"


@pytest.fixture
def run(db: Database) -> SeededRun:
    seeded = seed_run(db, leads=3, approval_required=True)
    assert set(seeded.outcomes.values()) == {"awaiting_approval"}
    return seeded


@pytest.fixture
def manager(db: Database, run: SeededRun) -> Actor:
    return make_actor(db, run.owner.tenant_id, Role.manager, "mia")


def _enrolment(db: Database, campaign_lead_id: int) -> CampaignLead:
    with db.session(system=True, read_only=True) as session:
        row = session.scalar(select(CampaignLead).where(CampaignLead.id == campaign_lead_id))
        assert row is not None
        return row


def test_analyst_may_not_open_it(open_page: PageFactory, db: Database, run: SeededRun) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, Role.analyst, "ann"))
    assert "cannot open this page" in app.error[0].value
    assert not app.button


@pytest.mark.parametrize("role", [Role.manager, Role.admin, Role.owner])
def test_drafts_show_with_sources_and_guard(open_page: PageFactory, db: Database, run: SeededRun,
                                            role: Role) -> None:
    app = open_page(PAGE, make_actor(db, run.owner.tenant_id, role, f"user-{role.value}"))
    assert not app.exception and not app.error
    first = _enrolment(db, run.campaign_lead_ids[0])
    assert app.text_area(key=f"review_body_{first.id}").value == first.draft_body
    assert "Guard: passed the checks" in "\n".join(c.value for c in app.caption)
    assert len(app.dataframe) == 3  # one table of sources per draft
    assert "3 drafts await approval" in "\n".join(c.value for c in app.caption)


def test_approve_submits_to_core(open_page: PageFactory, db: Database, run: SeededRun,
                                 manager: Actor) -> None:
    app = open_page(PAGE, manager)
    target = run.campaign_lead_ids[0]
    app.button(key=f"review_approve_{target}").click().run()
    assert not app.exception
    assert "Approved the draft" in app.success[0].value
    row = _enrolment(db, target)
    assert (row.status, row.reviewed_by) == ("approved", manager.user_id)
    assert f"review_body_{target}" not in [t.key for t in app.text_area]


def test_an_edit_the_guard_refuses_is_a_message(open_page: PageFactory, db: Database,
                                                run: SeededRun, manager: Actor) -> None:
    app = open_page(PAGE, manager)
    target = run.campaign_lead_ids[1]
    app.text_area(key=f"review_body_{target}").input("Hi, see http://evil.example/offer now").run()
    app.button(key=f"review_approve_{target}").click().run()
    assert "does not pass the checks" in app.error[0].value
    assert "evil.example" in app.error[0].value
    assert _enrolment(db, target).status == "awaiting_approval"


def test_a_good_edit_is_approved_as_edited(open_page: PageFactory, db: Database, run: SeededRun,
                                           manager: Actor) -> None:
    app = open_page(PAGE, manager)
    target = run.campaign_lead_ids[1]
    body = _enrolment(db, target).draft_body or ""
    edited = body.replace("Lead1", "Dear Lead1", 1) if "Lead1" in body else "Hello! " + body
    app.text_area(key=f"review_body_{target}").input(edited).run()
    assert app.button(key=f"review_approve_{target}").label == "Save the edit and approve"
    app.button(key=f"review_approve_{target}").click().run()
    assert not app.error
    row = _enrolment(db, target)
    assert row.status == "approved" and row.draft_body == edited
    assert row.guard_result["edited_by"] == manager.user_id


def test_reject_needs_a_reason(open_page: PageFactory, db: Database, run: SeededRun,
                               manager: Actor) -> None:
    app = open_page(PAGE, manager)
    target = run.campaign_lead_ids[2]
    app.button(key=f"review_reject_{target}").click().run()
    assert "Say why" in app.error[0].value
    assert _enrolment(db, target).status == "awaiting_approval"
    app.text_input(key=f"review_reason_{target}").input("too pushy").run()
    app.button(key=f"review_reject_{target}").click().run()
    row = _enrolment(db, target)
    assert row.status == "failed" and "too pushy" in (row.error or "")


def test_bulk_approve_and_reject(open_page: PageFactory, db: Database, run: SeededRun,
                                 manager: Actor) -> None:
    first, second, third = run.campaign_lead_ids
    app = open_page(PAGE, manager)
    assert app.button(key="review_bulk_approve").disabled
    app.checkbox(key=f"review_pick_{first}").check()
    app.checkbox(key=f"review_pick_{second}").check().run()
    app.button(key="review_bulk_approve").click().run()
    assert "Approved 2 drafts." in app.success[0].value
    assert [_enrolment(db, i).status for i in (first, second)] == ["approved", "approved"]
    app.button(key="review_select_all").click().run()
    app.button(key="review_bulk_reject").click().run()
    assert "Say why" in app.error[0].value
    app.text_input(key="review_bulk_reason").input("off-brand").run()
    app.button(key="review_bulk_reject").click().run()
    assert _enrolment(db, third).status == "failed"
    assert "No drafts await approval" in app.info[0].value


def test_filter_by_campaign_and_pages(open_page: PageFactory, db: Database, run: SeededRun,
                                      manager: Actor) -> None:
    other = seed_run(db, leads=3, tenant_id=run.owner.tenant_id, name="Winter SMS",
                     approval_required=True)
    app = open_page(PAGE, manager)
    assert "6 drafts await approval" in "\n".join(c.value for c in app.caption)
    app.selectbox(key="review_campaign").set_value(other.campaign_id).run()
    shown = {t.key for t in app.text_area}
    assert shown == {f"review_body_{i}" for i in other.campaign_lead_ids}


def test_long_queues_page_in_sql(open_page: PageFactory, db: Database) -> None:
    many = seed_run(db, leads=22, approval_required=True)
    app = open_page(PAGE, make_actor(db, many.owner.tenant_id, Role.manager, "mia"))
    first_page = {t.key for t in app.text_area}
    assert len(first_page) == 20
    app.number_input(key="review_page").set_value(2).run()
    second_page = {t.key for t in app.text_area}
    assert len(second_page) == 2 and not first_page & second_page
    assert first_page | second_page == {f"review_body_{i}" for i in many.campaign_lead_ids}


def test_lead_and_model_values_reach_the_markdown_escaped(open_page: PageFactory, db: Database,
                                                          run: SeededRun, manager: Actor) -> None:
    target = run.campaign_lead_ids[0]
    with db.session(system=True) as session, session.begin():
        leads = select(CampaignLead.lead_id).where(CampaignLead.id.in_(run.campaign_lead_ids))
        session.execute(update(Lead).where(Lead.id.in_(leads))
                        .values(first_name=IMAGE, last_name=DIRECTIVE, company=LATEX))
        row = session.scalar(select(CampaignLead).where(CampaignLead.id == target))
        assert row is not None
        row.guard_result = {**(row.guard_result or {}), "problems": [f"link to {IMAGE} not allowed"]}
    app = open_page(PAGE, manager)
    assert_shown_escaped(app, IMAGE, DIRECTIVE, LATEX, f"link to {IMAGE} not allowed")
    app.button(key=f"review_approve_{target}").click().run()
    assert "Approved the draft" in app.success[0].value
    assert_shown_escaped(app, IMAGE)  # the confirmation names the lead too


def _captions(app: object) -> str:
    return "\n".join(c.value for c in app.caption)  # type: ignore[attr-defined]


def test_an_edit_shows_the_checks_on_the_edit_not_the_model_draft(
    open_page: PageFactory, db: Database, run: SeededRun, manager: Actor
) -> None:
    app = open_page(PAGE, manager)
    target = run.campaign_lead_ids[1]
    app.text_area(key=f"review_body_{target}").input("Hi, see http://evil.example/offer now").run()
    captions = _captions(app)
    assert "Guard, on your edit (not saved yet): did not pass the checks" in captions
    assert any("evil.example" in w.value for w in app.warning)
    assert _enrolment(db, target).status == "awaiting_approval"  # nothing saved by looking
    good = _enrolment(db, target).draft_body or ""
    app.text_area(key=f"review_body_{target}").input(good.replace("Hi", "Hello", 1)).run()
    assert "Guard, on your edit (not saved yet): passed the checks" in _captions(app)


def _flag(db: Database, campaign_lead_id: int, **changes: object) -> None:
    with db.session(system=True) as session, session.begin():
        row = session.scalar(select(CampaignLead).where(CampaignLead.id == campaign_lead_id))
        assert row is not None
        for name, value in changes.items():
            setattr(row, name, value)


def test_filters_by_check_result_and_variant(open_page: PageFactory, db: Database, run: SeededRun,
                                             manager: Actor) -> None:
    first, second, third = run.campaign_lead_ids
    _flag(db, second, guard_result={"passed": False, "problems": ["the opt-out line is missing"]})
    _flag(db, third, variant="B")
    app = open_page(PAGE, manager)
    app.selectbox(key="review_guard").set_value("Flagged by the checks").run()
    assert {t.key for t in app.text_area} == {f"review_body_{second}"}
    assert "1 draft awaits approval" in _captions(app)
    app.selectbox(key="review_guard").set_value("Passed the checks").run()
    assert {t.key for t in app.text_area} == {f"review_body_{first}", f"review_body_{third}"}
    assert app.selectbox(key="review_variant").options == ["All variants", "Variant A", "Variant B"]
    app.selectbox(key="review_variant").set_value("B").run()
    assert {t.key for t in app.text_area} == {f"review_body_{third}"}
    app.selectbox(key="review_guard").set_value("Flagged by the checks").run()
    assert not app.text_area
    assert "No drafts awaiting approval match these filters." in app.info[0].value


def test_sorts_newest_flagged_and_costly_first(open_page: PageFactory, db: Database, run: SeededRun,
                                               manager: Actor) -> None:
    first, second, third = run.campaign_lead_ids
    _flag(db, second, guard_result={"passed": False, "problems": ["too long"]}, cost_microusd=10)
    _flag(db, third, cost_microusd=900)
    app = open_page(PAGE, manager)
    order = [t.key for t in app.text_area]
    assert order == [f"review_body_{i}" for i in (first, second, third)]  # oldest first by default
    app.selectbox(key="review_sort").set_value("Newest first").run()
    newest = [t.key for t in app.text_area]
    assert newest == list(reversed(order))
    app.selectbox(key="review_sort").set_value("Flagged by the checks first").run()
    assert app.text_area[0].key == f"review_body_{second}"
    app.selectbox(key="review_sort").set_value("Most expensive first").run()
    assert app.text_area[0].key == f"review_body_{third}"
    assert "most expensive first" in _captions(app)


REFUSAL = "Your role no longer reviews drafts of this campaign."


@pytest.mark.parametrize(("where", "service"), [
    (core.pipeline.review, "review_queue_count"),  # the page script imports these at each run
    (core.pipeline.review, "review_queue"),
    (filters, "review_variants"),
])
def test_a_queue_read_that_fails_is_a_message_not_a_traceback(
    open_page: PageFactory, manager: Actor, monkeypatch: pytest.MonkeyPatch, where: object, service: str
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionDenied(REFUSAL)

    monkeypatch.setattr(where, service, refuse)
    app = open_page(PAGE, manager)
    assert not app.exception
    assert [e.value for e in app.error] == [REFUSAL]


@pytest.mark.parametrize(("action", "button"), [("approve", "review_approve_"), ("reject", "review_reject_")])
def test_an_action_that_fails_is_a_message_and_the_draft_stays(
    open_page: PageFactory, run: SeededRun, manager: Actor, monkeypatch: pytest.MonkeyPatch,
    action: str, button: str,
) -> None:
    def clash(*args: object, **kwargs: object) -> None:
        raise Conflict("Draft #1 was handled by someone else meanwhile.")

    monkeypatch.setattr(draft, action, clash)
    app = open_page(PAGE, manager)
    target = run.campaign_lead_ids[0]
    app.button(key=f"{button}{target}").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == ["Draft #1 was handled by someone else meanwhile."]
    assert not app.success  # no "Approved"/"Rejected" flash
    assert app.text_area(key=f"review_body_{target}").value  # the draft is still on the page
