"""Human review: drafts wait with their sources, and approval, edits and rejection survive restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from core.errors import Conflict, PermissionDenied, ValidationError
from core.models import AuditLog, CampaignLead, EnrolmentStatus, LLMCall, Role
from core.pipeline.review import (
    approve,
    approve_many,
    reject,
    reject_many,
    review_queue,
)
from core.pipeline.service import PipelineRuntime, process_campaign_lead
from tests.core.pipeline.conftest import WORKER, Seed
from tests.factories import make_actor


@pytest.fixture
def awaiting(seed: Seed, runtime: PipelineRuntime) -> list[int]:
    seed.campaign(approval_required=True)
    ids = [seed.enrol(seed.lead(phone=f"+1212555010{i}", email=f"l{i}@x.example")) for i in range(3)]
    for cl in ids:
        assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "awaiting_approval"
    return ids


def _recover_lease(seed: Seed, cl: int) -> None:
    """What the runner does after approval (claim) or after a crash (reset to pending, claim)."""
    with seed.db.session(tenant_id=seed.tenant_id) as session, session.begin():
        session.execute(
            update(CampaignLead).where(CampaignLead.id == cl).values(status=EnrolmentStatus.pending.value)
        )
    seed.claim(cl)


def _calls(seed: Seed) -> int:
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        return session.scalar(select(func.count(LLMCall.id))) or 0


def test_draft_waits_with_its_sources_and_nothing_is_sent(seed: Seed, awaiting: list[int]) -> None:
    row = seed.enrolment(awaiting[0])
    assert row.status == "awaiting_approval" and row.lease_owner is None
    assert row.draft_body and row.guard_result["passed"] and row.research
    assert seed.messages() == []
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    queue = review_queue(seed.db, actor)
    assert [item.campaign_lead_id for item in queue] == awaiting
    assert queue[0].body == row.draft_body and queue[0].facts == row.research


def test_approval_resumes_at_send_without_composing_again_even_after_a_restart(
    seed: Seed, runtime: PipelineRuntime, awaiting: list[int]
) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    cl = awaiting[0]
    draft = seed.enrolment(cl).draft_body
    approve(seed.db, actor, cl)
    row = seed.enrolment(cl)
    assert (
        (row.status, row.reviewed_by) == ("approved", actor.user_id)
        and row.approved_at
        and row.next_action_at
    )
    calls_before = _calls(seed)
    _recover_lease(seed, cl)
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    assert _calls(seed) == calls_before  # no second compose
    assert seed.messages(cl)[0].body == draft
    assert seed.enrolment(cl).approved_at is None
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        assert "draft.approve" in session.scalars(select(AuditLog.action)).all()


def test_an_edit_passes_the_guard_again(seed: Seed, runtime: PipelineRuntime, awaiting: list[int]) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    cl = awaiting[0]
    with pytest.raises(ValidationError, match="link to evil.example"):
        approve(seed.db, actor, cl, edited_body="Hi Ada, see evil.example Reply STOP to opt out")
    assert seed.enrolment(cl).status == "awaiting_approval"
    approve(seed.db, actor, cl, edited_body="Hi Ada \u2014 shall we talk? Reply STOP to opt out")
    _recover_lease(seed, cl)
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    assert seed.messages(cl)[0].body == "Hi Ada - shall we talk? Reply STOP to opt out"


def test_reject_ends_the_lead_with_the_reason(seed: Seed, awaiting: list[int]) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    reject(seed.db, actor, awaiting[0], "too pushy")
    row = seed.enrolment(awaiting[0])
    assert (row.status, row.error) == ("failed", "rejected by a reviewer: too pushy")
    with pytest.raises(Conflict, match="not awaiting approval"):
        approve(seed.db, actor, awaiting[0])
    with pytest.raises(ValidationError, match="say why"):
        reject(seed.db, actor, awaiting[1], "  ")


def test_bulk_approve_and_reject_report_what_they_could_not_do(seed: Seed, awaiting: list[int]) -> None:
    actor = make_actor(seed.db, seed.tenant_id, Role.manager)
    done = approve_many(seed.db, actor, awaiting[:2])
    assert done.done == awaiting[:2] and done.refused == {}
    result = reject_many(seed.db, actor, awaiting, "off-message")
    assert result.done == [awaiting[2]] and set(result.refused) == set(awaiting[:2])
    assert [seed.enrolment(cl).status for cl in awaiting] == ["approved", "approved", "failed"]


def test_analysts_cannot_review(seed: Seed, awaiting: list[int]) -> None:
    analyst = make_actor(seed.db, seed.tenant_id, Role.analyst)
    with pytest.raises(PermissionDenied):
        approve(seed.db, analyst, awaiting[0])
