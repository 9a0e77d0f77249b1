"""The graph's routers and the mapping of a run's final state to the enrolment's columns, directly.

No database and no graph run: each router and `outcome_values` is a plain function of the state
(and the run's read-only context), so every branch is one row of a table.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.campaign_shape import Step
from core.llm.factory import ModelFactory
from core.models import EnrolmentStatus
from core.pipeline.context import PipelineContext
from core.pipeline.finalize import outcome_values
from core.pipeline.graph import (
    UnexpectedRoute,
    after_approval,
    after_compose,
    after_guard,
    after_research,
    after_validate,
)
from core.pipeline.outcomes import BUDGET_REASON, account_refused, ended
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import CampaignData, EnrolmentData, PipelineState, TenantData
from tests.conftest import make_settings

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
SENT_AT = NOW - timedelta(minutes=1)
GUARD = {"passed": True, "segments": 1}
DRAFT: PipelineState = {"draft_subject": None, "draft_body": "Hi Ada", "guard": GUARD}
FACTS = [{"fact": "CTO at Analytical Engines", "source": "lead"}]


# -- routers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, "research"),
        ({"resume_approved": True}, "send"),
        ({"status": "skipped"}, "finalize"),
        ({"status": "deferred", "resume_approved": True}, "finalize"),  # the status wins
    ],
)
def test_after_validate(state: PipelineState, expected: str) -> None:
    assert after_validate(state) == expected


@pytest.mark.parametrize(("state", "expected"), [({}, "compose"), ({"status": "pending"}, "finalize")])
def test_after_research(state: PipelineState, expected: str) -> None:
    assert after_research(state) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"draft_body": "Hi"}, "guard"),
        ({"status": "deferred"}, "finalize"),
        ({"status": "failed"}, "finalize"),
    ],
)
def test_after_compose(state: PipelineState, expected: str) -> None:
    assert after_compose(state) == expected


def test_after_compose_refuses_a_state_with_neither_draft_nor_status() -> None:
    with pytest.raises(UnexpectedRoute, match="neither a draft nor a status"):
        after_compose({"compose_attempts": 1})


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"guard": {"passed": True}}, "approval"),
        ({"guard": {"passed": True}, "preview": True}, "finalize"),  # a preview stops at the draft
        ({"guard": {"passed": False}, "feedback": "too long"}, "compose"),
        ({"guard": {"passed": False}, "status": "failed"}, "finalize"),
        ({"guard": {"passed": False}, "feedback": "too long", "status": "failed"}, "finalize"),
    ],
)
def test_after_guard(state: PipelineState, expected: str) -> None:
    assert after_guard(state) == expected


@pytest.mark.parametrize("state", [{}, {"guard": {"passed": False}}, {"guard": {}}])
def test_after_guard_refuses_a_failed_draft_without_feedback(state: PipelineState) -> None:
    with pytest.raises(UnexpectedRoute, match="neither passed the draft nor gave feedback"):
        after_guard(state)


@pytest.mark.parametrize(
    ("state", "expected"), [({}, "send"), ({"status": "awaiting_approval"}, "finalize")]
)
def test_after_approval(state: PipelineState, expected: str) -> None:
    assert after_approval(state) == expected


# -- the final state as the enrolment's columns -----------------------------------------------


def context(
    *, steps: tuple[Step, ...] | None = None, step: int = 0, attempts: int = 1, mode: str = "run",
    replied_at: datetime | None = None,
) -> PipelineContext:
    settings = make_settings("sqlite://")
    runtime = PipelineRuntime(settings=settings, models=ModelFactory(settings), senders={}, now=lambda: NOW)
    tenant = TenantData(
        id=1, name="Acme", default_country="US", send_window_start="08:00", send_window_end="21:00",
        weekdays_only=False, sms_sender_id=None, email_sender=None, postal_address=None,
        link_allow_list=(), playbook={}, price_overrides={},
    )
    campaign = CampaignData(
        id=2, tenant_id=1, name="Spring", channel="sms", status="running", system_prompt="Be brief.",
        variants=(), model="gpt-4o-mini", temperature=0.7, steps=steps or (Step(),),
        research_web=False, max_sms_segments=2, send_window=None, approval_required=False,
    )
    return PipelineContext(
        runtime=runtime,
        db=None,
        mode=mode,  # type: ignore[arg-type]
        lease_owner="worker-1",
        tenant=tenant,
        campaign=campaign,
        lead={"id": 3, "phone": "+12125550101", "replied_at": None},
        enrolment=EnrolmentData(id=4, step=step, variant="B", attempts=attempts, replied_at=replied_at),
        canary="canary",
        nonce="nonce",
    )


def test_a_lost_lease_writes_no_status() -> None:
    status, values = outcome_values({"status": None, "reason": "lease lost"}, context())
    assert status is None
    assert values == {"status_reason": "lease lost", "updated_at": NOW, "variant": "B"}


def test_awaiting_approval_keeps_the_draft_for_the_reviewer() -> None:
    state: PipelineState = {"status": "awaiting_approval", "reason": "waiting", "facts": FACTS, **DRAFT}
    status, values = outcome_values(state, context())
    assert status == "awaiting_approval"
    assert values == {
        "status_reason": "waiting", "updated_at": NOW, "variant": "B", "research": FACTS,
        "draft_subject": None, "draft_body": "Hi Ada", "guard_result": GUARD,
        "next_action_at": None, "error": None,
    }


def test_the_last_step_sent_completes_the_enrolment() -> None:
    state: PipelineState = {"status": "sent", "reason": None, "sent_at": SENT_AT, **DRAFT}
    status, values = outcome_values(state, context())
    assert status == "sent"
    assert values == {
        "status_reason": None, "updated_at": NOW, "variant": "B",
        "draft_subject": None, "draft_body": "Hi Ada", "guard_result": GUARD,
        "approved_at": None, "error": None, "next_action_at": None, "completed_at": NOW,
    }


def test_a_sent_step_with_a_follow_up_is_pending_again_after_the_delay() -> None:
    state: PipelineState = {"status": "sent", "reason": None, "sent_at": SENT_AT, **DRAFT}
    status, values = outcome_values(state, context(steps=(Step(), Step(delay_hours=72))))
    assert status == "pending"
    assert (values["step"], values["attempts"]) == (1, 0)
    assert values["next_action_at"] == SENT_AT + timedelta(hours=72)
    assert values["status_reason"] == "follow-up 1 due"
    assert "completed_at" not in values


def test_a_lead_that_replied_gets_no_follow_up() -> None:
    state: PipelineState = {"status": "sent", "reason": None, "sent_at": SENT_AT, **DRAFT}
    ctx = context(steps=(Step(), Step(delay_hours=72)), replied_at=NOW - timedelta(hours=1))
    status, values = outcome_values(state, ctx)
    assert (status, values["completed_at"], values["next_action_at"]) == ("sent", NOW, None)
    assert "step" not in values


def test_a_resumed_approved_draft_is_not_overwritten() -> None:
    state: PipelineState = {"status": "sent", "reason": None, "resume_approved": True, "facts": FACTS}
    _, values = outcome_values(state, context())
    assert not {"draft_body", "draft_subject", "guard_result", "research"} & values.keys()
    assert values["approved_at"] is None


def test_a_deferred_lead_is_due_when_the_node_said() -> None:
    due = NOW + timedelta(hours=10)
    state: PipelineState = {"status": "deferred", "reason": "quiet hours", "next_action_at": due}
    status, values = outcome_values(state, context())
    assert (status, values["next_action_at"]) == ("deferred", due)
    assert "attempts" not in values


@pytest.mark.parametrize(
    ("state", "attempts"),
    [
        ({"status": "pending", "reason": BUDGET_REASON}, 1),  # the claim's attempt is given back
        ({"status": "pending", "reason": "paused", "pause_campaign": "bad key"}, 1),
        ({"status": "pending", "reason": "sender not verified"}, None),  # a real attempt: kept
    ],
)
def test_a_pending_lead_gets_back_an_attempt_that_never_happened(
    state: PipelineState, attempts: int | None
) -> None:
    status, values = outcome_values(state, context(attempts=2))
    assert (status, values["next_action_at"], values.get("attempts")) == ("pending", None, attempts)


def test_an_attempt_given_back_never_goes_below_zero() -> None:
    _, values = outcome_values({"status": "pending", "reason": BUDGET_REASON}, context(attempts=0))
    assert values["attempts"] == 0


@pytest.mark.parametrize(
    ("status", "error"),
    [("failed", "the draft failed the guard twice"), ("unknown", "the draft failed the guard twice"),
     ("skipped", None)],
)
def test_final_statuses_complete_the_enrolment(status: str, error: str | None) -> None:
    state: PipelineState = {"status": status, "reason": "the draft failed the guard twice"}
    written, values = outcome_values(state, context())
    assert (written, values["completed_at"], values["next_action_at"]) == (status, NOW, None)
    assert values.get("error") == error


def test_a_failed_draft_is_kept_to_show_why() -> None:
    _, values = outcome_values({"status": "failed", "reason": "guard", **DRAFT}, context())
    assert values["draft_body"] == "Hi Ada" and values["guard_result"] == GUARD


# -- what nodes return ------------------------------------------------------------------------


def test_ended_sets_the_status_reason_and_one_event() -> None:
    due = NOW + timedelta(hours=1)
    update = ended(context(), "send", EnrolmentStatus.deferred, "quiet hours", next_action_at=due,
                   level="warning")
    assert (update["status"], update["reason"], update["next_action_at"]) == ("deferred", "quiet hours", due)
    [event] = update["events"]
    assert (event["node"], event["level"], event["message"]) == ("send", "warning", "quiet hours")
    assert event["data"] == {"status": "deferred"} and event["created_at"] == NOW


def test_an_account_refusal_pauses_a_run_but_fails_a_preview() -> None:
    run = account_refused(context(), "compose", "the API key was refused")
    assert (run["status"], run["pause_campaign"]) == ("pending", "the API key was refused")
    assert run["provider_ok"] is False
    assert run["provider_failure"] is None  # the pause is decided: not counted as a failure too
    preview = account_refused(replace(context(), mode="preview"), "compose", "the API key was refused")
    assert preview["status"] == "failed" and "pause_campaign" not in preview
