"""What the campaign editor needs besides core.campaigns: choices, live audience counts, saving.

Everything here is read through the same audience query as enrolment (`audience_conditions`), so
the count the editor shows before saving is the number a start would enrol now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.campaign_progress import SENT_MESSAGE_STATUSES
from core.campaign_rules import DRAFT_EDITABLE, EDITABLE_BY_STATUS
from core.campaign_shape import FIRST_STEP, CampaignData, CampaignView, check_steps, check_variants
from core.campaigns import archived_condition, create_campaign, get_campaign, update_campaign
from core.config import Settings
from core.db import Database
from core.errors import NotFound, ValidationError
from core.leads.queries import lead_search_condition
from core.llm.prices import load_price_table
from core.models import (
    FINAL_ENROLMENT_STATUSES,
    FINISHED_CAMPAIGN_STATUSES,
    Campaign,
    CampaignLead,
    CampaignOutcome,
    Lead,
    LeadImport,
    LeadTag,
    Message,
)
from core.money import MICROUSD_PER_USD, format_usd
from core.permissions import Actor, Permission
from core.pipeline.audience import audience_conditions
from core.pipeline.drafting import campaign_instructions, variant_names
from core.pipeline.run_inputs import lead_data
from core.status_words import campaign_status_text

CHOICES_LIMIT = 300  # distinct industries / countries offered as filter options
FINAL_STATUS_VALUES = tuple(s.value for s in FINAL_ENROLMENT_STATUSES)
FINISHED_STATUS_VALUES = tuple(s.value for s in FINISHED_CAMPAIGN_STATUSES)


@dataclass(frozen=True)
class AudienceChoices:
    """The values the audience filters offer: tags, imports (id -> label), industries, countries."""

    tags: list[str]
    imports: dict[int, str]
    industries: list[str]
    countries: list[str]


@dataclass(frozen=True)
class LeadChoice:
    id: int
    label: str


def editable_fields(status: str) -> frozenset[str]:
    """The fields a campaign in `status` accepts changes to (core.campaigns' rules)."""
    return EDITABLE_BY_STATUS.get(status, frozenset())


def lock_reason(status: str) -> str | None:
    """Why some fields are locked in `status`, for a caption; None when everything is editable."""
    if status == "draft":
        return None
    if status == "running":
        return ("This campaign is running: only its name and description can change. Pause it "
                "to change the send rate, budget or send window.")
    if status in ("scheduled", "paused"):
        return (f"This campaign is {status}: the send rate, budget and send window can change; "
                "the message, model, audience and steps are fixed once a campaign has left draft.")
    return f"This campaign is {status}: it can no longer be edited."


def model_choices(settings: Settings, current: str | None = None) -> list[str]:
    """The models of the price table, the settings' default first (and the campaign's own)."""
    models = sorted(load_price_table(settings.price_table_path))
    first = [m for m in (current, settings.default_model) if m]
    return list(dict.fromkeys([*first, *models]))


def distinct_values(session: Session, column: Any, limit: int) -> list[Any]:
    """The column's distinct non-null values in order, at most `limit`: one index probe each.

    A loose index scan over the (tenant_id, column) index: each value is the smallest one above
    the last, so a million leads in a dozen industries take a dozen lookups, where a GROUP BY
    reads every row (over half a second at a million leads).
    """
    values: list[Any] = []
    value = session.scalar(select(func.min(column)).where(column.is_not(None)))
    while value is not None and len(values) < limit:
        values.append(value)
        value = session.scalar(select(func.min(column)).where(column > value))
    return values


def audience_choices(db: Database, actor: Actor) -> AudienceChoices:
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        tags = distinct_values(session, LeadTag.tag, CHOICES_LIMIT)
        imports = session.execute(
            select(LeadImport.id, LeadImport.file_name, LeadImport.created_at)
            .order_by(LeadImport.id.desc()).limit(50)
        ).all()
        industries = distinct_values(session, Lead.industry, CHOICES_LIMIT)
        countries = distinct_values(session, Lead.country, CHOICES_LIMIT)
    return AudienceChoices(
        tags=list(tags),
        imports={i: f"#{i} {name} ({created:%Y-%m-%d})" for i, name, created in imports},
        industries=list(dict.fromkeys(i for i in industries if i)),
        countries=list(dict.fromkeys(c for c in countries if c)),
    )


def count_audience_filter(db: Database, actor: Actor, channel: str, audience: dict[str, Any]) -> int:
    """How many leads a campaign with this channel and audience filter would enrol now.

    Unsaved: the editor shows it live while the filters change. The same conditions as enrolment:
    not opted out, an address for the channel, not suppressed on it.
    """
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        conditions = audience_conditions(actor.tenant_id, channel, audience or {})
        return session.scalar(select(func.count(Lead.id)).where(*conditions)) or 0


def audience_leads(
    db: Database, actor: Actor, campaign_id: int, *, search: str = "", page: int = 1,
    page_size: int = 50,
) -> list[LeadChoice]:
    """One page of the campaign's audience for picking a lead to preview.

    `search` matches name, email, phone or company, or is a lead id written "#123".
    """
    actor.require(Permission.view_campaigns)
    campaign = get_campaign(db, actor, campaign_id)
    conditions = audience_conditions(actor.tenant_id, campaign.channel, campaign.audience)
    statement = select(Lead.id, Lead.first_name, Lead.last_name, Lead.company, Lead.phone,
                       Lead.email).where(*conditions)
    search = search.strip()
    if search.startswith("#") and search[1:].isdigit():
        statement = statement.where(Lead.id == int(search[1:]))
    elif (matches := lead_search_condition(search)) is not None:
        statement = statement.where(matches)
    statement = statement.order_by(Lead.id).offset((max(page, 1) - 1) * page_size).limit(page_size)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(statement).all()
    return [
        LeadChoice(row.id, " ".join(str(p) for p in (
            f"#{row.id}", row.first_name or "", row.last_name or "",
            f"· {row.company}" if row.company else "",
            f"· {row.phone if campaign.channel == 'sms' else row.email}",
        ) if p))
        for row in rows
    ]


def campaign_table(db: Database, actor: Actor, *, archived: bool | None = False) -> pd.DataFrame:
    """Every campaign with its status, progress (share of enrolled leads done) and spend.

    Archived campaigns only when asked (core.campaigns.archived_condition). A campaign not
    finished has its enrolments counted by status from its range of the (campaign_id, status)
    index; a finished one's counts are read from `campaign_outcomes`, counted once after it
    finished (`finished_counts`): its enrolments no longer change, and grouping every enrolment
    of the tenant on each render read a million rows.
    Money as text in the one format of every page (core.money.format_usd); the *_usd columns
    keep the numbers.
    """
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaigns = session.execute(
            select(Campaign.id, Campaign.name, Campaign.channel, Campaign.status,
                   Campaign.spent_microusd, Campaign.budget_cap_microusd, Campaign.created_at,
                   Campaign.completed_at)
            .where(archived_condition(archived))
            .order_by(Campaign.created_at.desc())
        ).all()
        finished = {c.id: c.completed_at for c in campaigns
                    if c.status in FINISHED_STATUS_VALUES and c.completed_at is not None}
        # The others' index ranges: a draft's is empty, a live one's changes by the minute.
        leads = {c.id: _leads_by_status(session, c.id) for c in campaigns if c.id not in finished}
    outcomes = finished_counts(db, actor, finished)
    rows = []
    for c in campaigns:
        by_status, sent = outcomes.get(c.id, (leads.get(c.id, {}), 0))
        enrolled = sum(by_status.values())
        done = sum(n for s, n in by_status.items() if s in FINAL_STATUS_VALUES)
        rows.append({
            "id": c.id, "name": c.name, "channel": c.channel,
            # "completed: 0 sent, 73 failed", never a bare "completed" over a run that sent nothing.
            "status": campaign_status_text(c.status, by_status, sent),
            "enrolled": enrolled, "progress": done / enrolled if enrolled else 0.0,
            "spent": format_usd(c.spent_microusd or 0),
            "budget": "no cap" if c.budget_cap_microusd is None else format_usd(c.budget_cap_microusd),
            "spent_usd": (c.spent_microusd or 0) / MICROUSD_PER_USD,
            "budget_usd": None if c.budget_cap_microusd is None else c.budget_cap_microusd / MICROUSD_PER_USD,
            "created_at": c.created_at,
        })
    columns = ["id", "name", "channel", "status", "enrolled", "progress", "spent", "budget", "spent_usd",
               "budget_usd", "created_at"]
    return pd.DataFrame(rows, columns=columns)


def _leads_by_status(session: Session, campaign_id: int) -> dict[str, int]:
    """One campaign's enrolments by status: a range of the (campaign_id, status) index."""
    return {str(status): int(n) for status, n in session.execute(
        select(CampaignLead.status, func.count(CampaignLead.id))
        .where(CampaignLead.campaign_id == campaign_id).group_by(CampaignLead.status)
    )}


def finished_counts(
    db: Database, actor: Actor, finished: dict[int, datetime]
) -> dict[int, tuple[dict[str, int], int]]:
    """Finished campaigns' (enrolments by status, messages sent), by campaign id.

    `finished`: campaign id -> its completed_at. Kept in `campaign_outcomes` under that time; a
    campaign without a row for it (finished since the last look, or reopened and finished again)
    is counted now and its row written. What changes a finished campaign's messages later (a
    delivery receipt that turns a sent message undelivered, a send that was under way when it
    was cancelled) is not counted again.
    """
    if not finished:
        return {}
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        kept = {o.campaign_id: (dict(o.leads_by_status), o.messages_sent)
                for o in session.scalars(select(CampaignOutcome)
                                         .where(CampaignOutcome.campaign_id.in_(finished)))
                if o.completed_at == finished[o.campaign_id]}
        counted = {campaign_id: (_leads_by_status(session, campaign_id), session.scalar(
            select(func.count(Message.id))
            .where(Message.campaign_id == campaign_id, Message.status.in_(SENT_MESSAGE_STATUSES))
        ) or 0) for campaign_id in finished if campaign_id not in kept}
    if counted:
        _keep_outcomes(db, actor, {i: (finished[i], *counts) for i, counts in counted.items()})
    return kept | counted


def _keep_outcomes(
    db: Database, actor: Actor, counted: dict[int, tuple[datetime, dict[str, int], int]]
) -> None:
    try:
        with db.session(tenant_id=actor.tenant_id) as session, session.begin():
            session.execute(delete(CampaignOutcome).where(CampaignOutcome.campaign_id.in_(counted)))
            session.add_all(CampaignOutcome(campaign_id=i, completed_at=done, leads_by_status=by_status,
                                            messages_sent=sent)
                            for i, (done, by_status, sent) in counted.items())
    except IntegrityError:
        pass  # another page load kept the same counts at the same moment


def _typed(key: str, value: Any) -> Any:
    """A field as a saved campaign holds it: steps and variants given as JSON objects become typed."""
    if key == "steps":
        return check_steps(value)
    if key == "variants":
        return check_variants(value)
    return value


def _changes(current: CampaignView, key: str, value: Any) -> bool:
    try:
        return bool(getattr(current, key) != _typed(key, value))
    except ValidationError:
        return True  # not a value the campaign could hold: update_campaign names the field


def save_campaign(
    db: Database, actor: Actor, campaign_id: int | None, values: dict[str, Any]
) -> CampaignView:
    """Create a draft from the editor's values, or apply to a campaign only what changed.

    Sending only the changed fields lets the status rules of `update_campaign` judge exactly
    what the user tried to change: an untouched locked field is not a refused change.
    """
    unknown = set(values) - DRAFT_EDITABLE
    if unknown:
        raise ValidationError(f"unknown campaign field {', '.join(sorted(unknown))}")
    if campaign_id is None:
        fields = dict(values)
        return create_campaign(db, actor, name=fields.pop("name", ""),
                               channel=fields.pop("channel", "sms"), **fields)
    current = get_campaign(db, actor, campaign_id)
    changes = {key: value for key, value in values.items() if _changes(current, key, value)}
    if not changes:
        return current
    return update_campaign(db, actor, campaign_id, **changes)


def step_choices(campaign: CampaignView) -> dict[int, str]:
    """step -> its name for a picker: "First touch", "Follow-up 1 (48 h later)", ..."""
    return {
        index: "First touch" if index == 0 else f"Follow-up {index} ({step.delay_hours:g} h later)"
        for index, step in enumerate(campaign.steps or (FIRST_STEP,))
    }


def variant_choices(campaign: CampaignView) -> list[str]:
    """The A/B variants' names; a campaign without variants has one, "A"."""
    return variant_names(campaign.variants) or ["A"]


def lead_instructions(
    db: Database, actor: Actor, campaign_id: int, lead_id: int, *, step: int, variant: str
) -> str:
    """The campaign's instructions for this lead, step and variant, merge fields filled.

    What the model is asked to follow, as the preview shows it next to the draft.
    """
    actor.require(Permission.view_campaigns)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign, lead = session.get(Campaign, campaign_id), session.get(Lead, lead_id)
        if campaign is None or lead is None:
            raise NotFound(f"campaign {campaign_id} or lead {lead_id} does not exist")
        return campaign_instructions(CampaignData.of(campaign), variant, step, lead_data(lead))
