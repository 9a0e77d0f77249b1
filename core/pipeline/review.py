"""Human review: the queue of drafts awaiting approval, and approving, editing or rejecting them.

The draft, its sources and the guard's verdict live on the campaign_leads row, so review
survives restarts. Approving sets `approved_at` and makes the enrolment due now (status
`approved`); the runner claims it and the pipeline resumes at send without composing again.
An edit passes the guard again before it is accepted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, LeadflowError, NotFound, ValidationError
from core.lifecycle import approved_values, rejected_values, write
from core.models import Campaign, CampaignLead, EnrolmentStatus, Event, Lead, Tenant
from core.permissions import Actor, Permission
from core.pipeline.drafting import guard_rules_for
from core.pipeline.guard import GuardResult, check_draft
from core.pipeline.run_inputs import lead_data, tenant_data
from core.pipeline.state import CampaignData


@dataclass(frozen=True)
class ReviewItem:
    campaign_lead_id: int
    campaign_id: int
    lead_id: int
    lead_name: str
    company: str | None
    to_address: str | None
    step: int
    variant: str
    subject: str | None
    body: str | None
    facts: list[dict[str, Any]]
    guard: dict[str, Any]
    cost_microusd: int
    updated_at: datetime


@dataclass(frozen=True)
class BulkResult:
    done: list[int]
    refused: dict[int, str]  # campaign_lead_id -> why


class ReviewSort(enum.StrEnum):
    """The orders a reviewer may read the queue in; the values are what the page shows."""

    oldest = "Oldest first"
    newest = "Newest first"
    flagged = "Flagged by the checks first"
    cost = "Most expensive first"
    lead = "Lead name, A to Z"


class GuardFilter(enum.StrEnum):
    any = "Any check result"
    passed = "Passed the checks"
    flagged = "Flagged by the checks"


@dataclass(frozen=True)
class ReviewFilter:
    """Which drafts the queue shows and in what order; the default is every draft, oldest first."""

    campaign_id: int | None = None
    guard: GuardFilter = GuardFilter.any
    variant: str | None = None
    sort: ReviewSort = ReviewSort.oldest


# Any select over campaign_leads: the filters keep the statement's own row type.
_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


def _guard_passed() -> Any:
    return CampaignLead.guard_result["passed"].as_boolean()


def _filtered(query: _Query, view: ReviewFilter) -> _Query:
    query = query.where(CampaignLead.status == EnrolmentStatus.awaiting_approval.value)
    if view.campaign_id is not None:
        query = query.where(CampaignLead.campaign_id == view.campaign_id)
    if view.variant is not None:
        query = query.where(CampaignLead.variant == view.variant)
    if view.guard is GuardFilter.passed:
        query = query.where(_guard_passed().is_(True))
    elif view.guard is GuardFilter.flagged:
        # A draft without a verdict is flagged too: nothing says it passed.
        query = query.where(func.coalesce(_guard_passed(), False).is_(False))
    return query


def _ordered(query: _Query, sort: ReviewSort) -> _Query:
    tie = CampaignLead.id.desc() if sort is ReviewSort.newest else CampaignLead.id
    orders: dict[ReviewSort, list[Any]] = {
        ReviewSort.oldest: [CampaignLead.updated_at],
        ReviewSort.newest: [CampaignLead.updated_at.desc()],
        ReviewSort.flagged: [func.coalesce(_guard_passed(), False), CampaignLead.updated_at],
        ReviewSort.cost: [CampaignLead.cost_microusd.desc(), CampaignLead.updated_at],
        ReviewSort.lead: [func.lower(func.coalesce(Lead.first_name, "")),
                          func.lower(func.coalesce(Lead.last_name, ""))],
    }
    return query.order_by(*orders[sort], tie)


def review_queue(
    db: Database, actor: Actor, view: ReviewFilter = ReviewFilter(), *, limit: int = 100, offset: int = 0
) -> list[ReviewItem]:
    """Drafts awaiting approval that `view` selects, in its order; `offset` pages through them."""
    actor.require(Permission.review_drafts)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        query = (
            select(CampaignLead, Lead, Campaign.channel)
            .join(Lead, Lead.id == CampaignLead.lead_id)
            .join(Campaign, Campaign.id == CampaignLead.campaign_id)
        )
        query = _ordered(_filtered(query, view), view.sort).limit(limit).offset(offset)
        return [
            ReviewItem(
                campaign_lead_id=cl.id,
                campaign_id=cl.campaign_id,
                lead_id=lead.id,
                lead_name=" ".join(p for p in (lead.first_name, lead.last_name) if p) or f"lead {lead.id}",
                company=lead.company,
                to_address=lead.phone if channel == "sms" else lead.email,
                step=cl.step,
                variant=cl.variant,
                subject=cl.draft_subject,
                body=cl.draft_body,
                facts=list(cl.research or []),
                guard=dict(cl.guard_result or {}),
                cost_microusd=cl.cost_microusd,
                updated_at=cl.updated_at,
            )
            for cl, lead, channel in session.execute(query)
        ]


def review_queue_count(db: Database, actor: Actor, view: ReviewFilter = ReviewFilter()) -> int:
    """How many drafts awaiting approval `view` selects."""
    actor.require(Permission.review_drafts)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return int(session.scalar(_filtered(select(func.count(CampaignLead.id)), view)) or 0)


def review_variants(db: Database, actor: Actor, *, campaign_id: int | None = None) -> list[str]:
    """The variants that drafts awaiting approval belong to, for the queue's filter."""
    actor.require(Permission.review_drafts)
    query = _filtered(select(CampaignLead.variant).distinct(), ReviewFilter(campaign_id=campaign_id))
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return sorted(session.scalars(query))


def _awaiting(session: Session, campaign_lead_id: int) -> CampaignLead:
    enrolment = session.get(CampaignLead, campaign_lead_id)
    if enrolment is None:
        raise NotFound(f"no draft {campaign_lead_id} to review")
    if enrolment.status != EnrolmentStatus.awaiting_approval.value:
        raise Conflict(
            f"draft {campaign_lead_id} is {enrolment.status.replace('_', ' ')}, "
            "not awaiting approval; refresh the review queue"
        )
    return enrolment


def _event(session: Session, enrolment: CampaignLead, message: str, now: datetime, **data: Any) -> None:
    session.add(
        Event(
            tenant_id=enrolment.tenant_id,
            campaign_id=enrolment.campaign_id,
            campaign_lead_id=enrolment.id,
            trace_id=enrolment.trace_id,
            node="approval",
            level="info",
            message=message,
            data=data,
            created_at=now,
        )
    )


def _check_edit(
    db: Database,
    session: Session,
    actor: Actor,
    enrolment: CampaignLead,
    edited_body: str | None,
    edited_subject: str | None,
) -> GuardResult:
    """The guard's verdict on the draft as edited (None keeps that part as the model wrote it)."""
    campaign = session.get(Campaign, enrolment.campaign_id)
    lead = session.get(Lead, enrolment.lead_id)
    tenant = session.get(Tenant, actor.tenant_id)
    assert campaign is not None and lead is not None and tenant is not None
    rules = guard_rules_for(
        db.settings,
        tenant_data(tenant),
        CampaignData.of(campaign),
        lead_data(lead),
        step=enrolment.step,
        variant=enrolment.variant,
        canary="",
    )
    body = edited_body if edited_body is not None else enrolment.draft_body or ""
    subject = edited_subject if edited_subject is not None else enrolment.draft_subject
    return check_draft(body, subject if campaign.channel == "email" else None, rules)


def check_edit(
    db: Database,
    actor: Actor,
    campaign_lead_id: int,
    *,
    edited_body: str | None = None,
    edited_subject: str | None = None,
) -> GuardResult:
    """What the checks say of an edit before it is submitted, so the queue never shows the
    model's verdict under a reviewer's text. Nothing is saved."""
    actor.require(Permission.review_drafts)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        enrolment = _awaiting(session, campaign_lead_id)
        return _check_edit(db, session, actor, enrolment, edited_body, edited_subject)


def _approve_in(
    db: Database,
    session: Session,
    actor: Actor,
    campaign_lead_id: int,
    *,
    edited_body: str | None,
    edited_subject: str | None,
    now: datetime,
) -> None:
    enrolment = _awaiting(session, campaign_lead_id)
    edited = edited_body is not None or edited_subject is not None
    if edited:
        result = _check_edit(db, session, actor, enrolment, edited_body, edited_subject)
        if not result.passed:
            raise ValidationError("the edited draft does not pass the checks: " + "; ".join(result.problems))
        enrolment.draft_body, enrolment.draft_subject = result.body, result.subject
        enrolment.guard_result = {**result.as_dict(), "edited_by": actor.user_id}
    write(enrolment, approved_values(now, actor.user_id, edited=edited))
    _event(
        session,
        enrolment,
        f"approved by {actor.username or actor.user_id}" + (" with an edit" if edited else ""),
        now,
        edited=edited,
    )
    record_audit(
        session,
        tenant_id=actor.tenant_id,
        user_id=actor.user_id,
        action="draft.approve",
        entity="campaign_lead",
        entity_id=campaign_lead_id,
        details={"edited": edited},
    )


def approve(
    db: Database,
    actor: Actor,
    campaign_lead_id: int,
    *,
    edited_body: str | None = None,
    edited_subject: str | None = None,
) -> None:
    """Approve a draft (an edit must pass the guard again); the runner then sends it."""
    actor.require(Permission.review_drafts)
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        _approve_in(
            db,
            session,
            actor,
            campaign_lead_id,
            edited_body=edited_body,
            edited_subject=edited_subject,
            now=now,
        )


def _reject_in(session: Session, actor: Actor, campaign_lead_id: int, reason: str, now: datetime) -> None:
    enrolment = _awaiting(session, campaign_lead_id)
    values = rejected_values(now, actor.user_id, reason)
    write(enrolment, values)
    _event(session, enrolment, values["status_reason"], now)
    record_audit(
        session,
        tenant_id=actor.tenant_id,
        user_id=actor.user_id,
        action="draft.reject",
        entity="campaign_lead",
        entity_id=campaign_lead_id,
        details={"reason": reason},
    )


def reject(db: Database, actor: Actor, campaign_lead_id: int, reason: str) -> None:
    """Reject a draft: the enrolment ends `failed` with the reviewer's reason; nothing is sent."""
    actor.require(Permission.review_drafts)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError("say why the draft is rejected")
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        _reject_in(session, actor, campaign_lead_id, reason, datetime.now(UTC))


def approve_many(db: Database, actor: Actor, campaign_lead_ids: list[int]) -> BulkResult:
    """Approve each draft as it is; one that cannot be approved is reported, not fatal."""
    actor.require(Permission.review_drafts)
    done, refused = [], {}
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        for campaign_lead_id in campaign_lead_ids:
            try:
                with session.begin_nested():
                    _approve_in(
                        db, session, actor, campaign_lead_id, edited_body=None, edited_subject=None, now=now
                    )
                done.append(campaign_lead_id)
            except LeadflowError as exc:
                refused[campaign_lead_id] = str(exc)
    return BulkResult(done, refused)


def reject_many(db: Database, actor: Actor, campaign_lead_ids: list[int], reason: str) -> BulkResult:
    actor.require(Permission.review_drafts)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError("say why the drafts are rejected")
    done, refused = [], {}
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        for campaign_lead_id in campaign_lead_ids:
            try:
                with session.begin_nested():
                    _reject_in(session, actor, campaign_lead_id, reason, now)
                done.append(campaign_lead_id)
            except LeadflowError as exc:
                refused[campaign_lead_id] = str(exc)
    return BulkResult(done, refused)
