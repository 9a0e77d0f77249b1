"""The outreach funnel (enrolled, sent, delivered, replied, opted out) per campaign and broken down.

Stages count enrolments: an enrolment is *sent* when its first touch (step 0) left as sent or
delivered, *delivered* when that first touch was delivered, *replied* when the lead replied, and
*opted out* when the lead opted out after it was enrolled. Counting the first touch only keeps
the stages nested (follow-ups do not count a lead twice) and needs no COUNT(DISTINCT).

Every figure is a GROUP BY in SQL; pandas only merges and derives rates from the aggregates. The
all-campaign funnel reads three narrow aggregates; the breakdowns (variant, industry, title,
hour) are for one campaign at a time, so they join at most one campaign's enrolments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import and_, case, extract, func, select
from sqlalchemy.orm import Session, aliased

from core.analytics import charts
from core.analytics.period import ALL_TIME, Period
from core.db import Database
from core.errors import NotFound, ValidationError
from core.models import Campaign, CampaignLead, Lead, Message, MessageStatus
from core.permissions import Actor, Permission

STAGES = ("enrolled", "sent", "delivered", "replied", "opted_out")
SENT_STATUSES = (MessageStatus.sent.value, MessageStatus.delivered.value)
# A first touch the carrier could not deliver (a delivery receipt said so): not counted as sent,
# shown beside the stages per campaign.
UNDELIVERED = MessageStatus.undelivered.value
Breakdown = Literal["variant", "industry", "title", "hour"]
BREAKDOWNS: tuple[Breakdown, ...] = ("variant", "industry", "title", "hour")
MAX_BREAKDOWN_ROWS = 50
NONE_LABEL = "(none)"
BREAKDOWN_TITLES: dict[Breakdown, str] = {
    "variant": "A/B variant", "industry": "industry", "title": "title", "hour": "hour (UTC)"}


# Each rate: a stage over the leads sent (0.0 when none was sent).
RATES = {"delivery_rate": "delivered", "reply_rate": "replied", "opt_out_rate": "opted_out"}


def _with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    for stage in STAGES:
        frame[stage] = frame[stage].fillna(0).astype("int64")
    sent = frame["sent"].where(frame["sent"] > 0)
    for rate, stage in RATES.items():
        frame[rate] = (frame[stage] / sent).fillna(0.0)
    return frame


def _row_with_rates(row: dict[str, Any]) -> dict[str, Any]:
    """`_with_rates` for one row as a dict: a few rows need no DataFrame."""
    sent = row["sent"]
    return {**row, **{rate: row[stage] / sent if sent else 0.0 for rate, stage in RATES.items()}}


def _opted_out_after_enrolment() -> Any:
    return and_(Lead.opted_out_at.is_not(None), Lead.opted_out_at >= CampaignLead.created_at)


def _opted_out_lead_of_enrolment() -> Any:
    """Join condition: the enrolment's lead, only when it opted out after being enrolled."""
    return and_(Lead.id == CampaignLead.lead_id, _opted_out_after_enrolment())


def _first_touches_in(period: Period, where: Any) -> Any:
    """Messages that are first touches (by `where`) of enrolments made in `period`."""
    if period.is_all_time:
        return where
    cohort = select(CampaignLead.id).where(*period.conditions(CampaignLead.created_at))
    return and_(where, Message.campaign_lead_id.in_(cohort))


def funnel_by_campaign(
    db: Database, actor: Actor, period: Period = ALL_TIME, *, campaign_id: int | None = None
) -> pd.DataFrame:
    """One row per campaign: its status, the five stages and the rates derived from them, and the
    first touches the carrier could not deliver (`undelivered`, beside the stages).

    `campaign_id`: that campaign's row alone (NotFound when the tenant has no such campaign),
    each aggregate reading only its enrolments and messages.
    """
    actor.require(Permission.view_reports)
    cohort = period.conditions(CampaignLead.created_at)
    one: dict[str, list[Any]] = {"campaign": [], "enrolment": [], "message": []}
    if campaign_id is not None:
        one = {"campaign": [Campaign.id == campaign_id],
               "enrolment": [CampaignLead.campaign_id == campaign_id],
               "message": [Message.campaign_id == campaign_id]}
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaigns = pd.DataFrame(
            [tuple(r) for r in session.execute(
                select(Campaign.id, Campaign.name, Campaign.channel, Campaign.status,
                       Campaign.created_at).where(*one["campaign"])
                .order_by(Campaign.created_at.desc(), Campaign.id.desc())
            )],
            columns=["campaign_id", "campaign", "channel", "status", "created_at"],
        )
        if campaign_id is not None and campaigns.empty:
            raise NotFound(f"campaign {campaign_id} does not exist")
        enrolled = _frame(session.execute(
            select(CampaignLead.campaign_id, func.count(), func.count(CampaignLead.replied_at))
            .where(*cohort, *one["enrolment"])
            .group_by(CampaignLead.campaign_id)
        ), ["campaign_id", "enrolled", "replied"])
        # Opted-out leads are few: start from them (a small partial index) and look up their
        # enrolments, rather than joining every enrolment with its lead.
        opted_out = _frame(session.execute(
            select(CampaignLead.campaign_id, func.count())
            .join_from(Lead, CampaignLead, CampaignLead.lead_id == Lead.id)
            .where(_opted_out_after_enrolment(), *cohort, *one["enrolment"])
            .group_by(CampaignLead.campaign_id)
        ), ["campaign_id", "opted_out"])
        first_touch = _frame(session.execute(
            select(Message.campaign_id, Message.status, func.count())
            .where(_first_touches_in(
                period, and_(Message.step == 0, Message.status.in_((*SENT_STATUSES, UNDELIVERED)),
                             *one["message"])))
            .group_by(Message.campaign_id, Message.status)
        ), ["campaign_id", "status", "n"])
    sends = first_touch.pivot_table(index="campaign_id", columns="status", values="n",
                                    aggfunc="sum", fill_value=0)
    sends = sends.reindex(columns=[*SENT_STATUSES, UNDELIVERED], fill_value=0)
    stages = pd.DataFrame({
        "sent": sends[MessageStatus.sent.value] + sends[MessageStatus.delivered.value],
        "delivered": sends[MessageStatus.delivered.value],
        "undelivered": sends[UNDELIVERED],
    }).reset_index()
    funnel = (campaigns.merge(enrolled, on="campaign_id", how="left")
              .merge(stages, on="campaign_id", how="left")
              .merge(opted_out, on="campaign_id", how="left"))
    funnel = _with_rates(funnel)
    funnel["undelivered"] = funnel["undelivered"].fillna(0).astype("int64")
    return funnel[["campaign_id", "campaign", "channel", "status", *STAGES[:3], "undelivered",
                   *STAGES[3:], "delivery_rate", "reply_rate", "opt_out_rate"]]


def funnel_totals(db: Database, actor: Actor, period: Period = ALL_TIME) -> pd.Series:
    """Every campaign together, in leads: the five stages and their rates.

    Summing the per-campaign rows would count a lead once per campaign (a lead in three
    campaigns who replied once would be three replies), so each stage counts distinct leads.
    """
    actor.require(Permission.view_reports)
    sent = _first_touches_in(period, and_(Message.step == 0, Message.status.in_(SENT_STATUSES)))
    cohort = period.conditions(CampaignLead.created_at)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        enrolled, replied = session.execute(
            select(func.count(func.distinct(CampaignLead.lead_id)),
                   func.count(func.distinct(case((CampaignLead.replied_at.is_not(None),
                                                  CampaignLead.lead_id)))))
            .where(*cohort)
        ).one()
        contacted, delivered = session.execute(
            select(func.count(func.distinct(Message.lead_id)),
                   func.count(func.distinct(case((Message.status == MessageStatus.delivered.value,
                                                  Message.lead_id)))))
            .where(sent)
        ).one()
        opted_out = session.scalar(
            select(func.count(func.distinct(Lead.id)))
            .join_from(Lead, CampaignLead, CampaignLead.lead_id == Lead.id)
            .where(_opted_out_after_enrolment(), *cohort)
        )
    totals = pd.DataFrame([{"enrolled": enrolled, "sent": contacted, "delivered": delivered,
                            "replied": replied, "opted_out": opted_out}])
    return _with_rates(totals).iloc[0]


def _frame(result: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in result], columns=columns)


def funnel_breakdown(
    db: Database,
    actor: Actor,
    campaign_id: int,
    by: Breakdown,
    period: Period = ALL_TIME,
    *,
    limit: int = MAX_BREAKDOWN_ROWS,
) -> pd.DataFrame:
    """One campaign's funnel by A/B variant, lead industry, lead title or hour of first send (UTC).

    Industry and title keep the `limit` largest groups; hours are 0-23 with every hour present.
    """
    actor.require(Permission.view_reports)
    if by not in BREAKDOWNS:
        raise ValidationError(f"cannot break the funnel down by '{by}'; use one of {', '.join(BREAKDOWNS)}")
    first = aliased(Message)
    key: Any = {
        "variant": CampaignLead.variant,
        "industry": Lead.industry,
        "title": Lead.title,
        "hour": extract("hour", first.sent_at),
    }[by]
    sent = case((first.status.in_(SENT_STATUSES), 1), else_=0)
    delivered = case((first.status == MessageStatus.delivered.value, 1), else_=0)
    opted_out = case((_opted_out_after_enrolment(), 1), else_=0)
    enrolled = func.count()
    statement = select(key.label("key"), enrolled, func.sum(sent), func.sum(delivered),
                       func.count(CampaignLead.replied_at), func.sum(opted_out))
    if by in ("industry", "title"):
        statement = statement.join(Lead, Lead.id == CampaignLead.lead_id)
    else:
        # Variant and hour need a lead only when it opted out: join just those few.
        statement = statement.outerjoin(Lead, _opted_out_lead_of_enrolment())
    statement = (
        statement
        # The campaign condition is implied by the enrolment, but lets the planner read only
        # this campaign's first touches from their index instead of every message.
        .outerjoin(first, and_(first.campaign_lead_id == CampaignLead.id, first.step == 0,
                               first.campaign_id == campaign_id))
        .where(CampaignLead.campaign_id == campaign_id, *period.conditions(CampaignLead.created_at))
        .group_by(key)
    )
    if by == "hour":
        statement = statement.where(first.sent_at.is_not(None))
    elif by in ("industry", "title"):
        statement = statement.order_by(enrolled.desc()).limit(limit)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        _require_campaign(session, campaign_id)
        frame = _frame(session.execute(statement), ["key", *STAGES])
    frame = _with_rates(frame)
    if by == "hour":
        frame["key"] = frame["key"].astype("int64")
        frame = pd.DataFrame({"key": range(24)}).merge(frame, on="key", how="left")
        frame = _with_rates(frame)
    else:
        frame["key"] = frame["key"].fillna(NONE_LABEL).astype(str)
        if by == "variant":
            frame = frame.sort_values("key", ignore_index=True)
    return frame.rename(columns={"key": by})


@dataclass(frozen=True)
class CampaignFunnel:
    """One campaign's funnel, all time: its row of `funnel_by_campaign` and its rows of
    `funnel_breakdown(..., "variant")`, as dicts with the same keys."""

    campaign: dict[str, Any]
    variants: list[dict[str, Any]]


def campaign_funnel(db: Database, actor: Actor, campaign_id: int) -> CampaignFunnel:
    """The campaign's funnel and its funnel per A/B variant, in one session of narrow aggregates.

    The same stages as the two reports, for a campaign's own report read often by machines: each
    aggregate reads only that campaign's rows from a covering index (enrolments by variant, its
    first touches, its opted-out leads); the rates of its few rows are derived without pandas.
    """
    actor.require(Permission.view_reports)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return campaign_funnel_in(session, campaign_id)


def campaign_funnel_in(session: Session, campaign_id: int) -> CampaignFunnel:
    """`campaign_funnel` in the caller's session (a tenant's: the caller checked the role)."""
    of_campaign = CampaignLead.campaign_id == campaign_id
    first_touches = and_(Message.campaign_id == campaign_id, Message.step == 0)
    found = session.execute(
        select(Campaign.id, Campaign.name, Campaign.channel, Campaign.status)
        .where(Campaign.id == campaign_id)
    ).first()
    if found is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    enrolled = session.execute(
        select(CampaignLead.variant, func.count(), func.count(CampaignLead.replied_at))
        .where(of_campaign).group_by(CampaignLead.variant)
    ).all()
    opted_out = dict(session.execute(
        select(CampaignLead.variant, func.count())
        .join_from(Lead, CampaignLead, CampaignLead.lead_id == Lead.id)
        .where(_opted_out_after_enrolment(), of_campaign)
        .group_by(CampaignLead.variant)
    ).all())
    sent_by_variant = session.execute(
        select(CampaignLead.variant, Message.status, func.count())
        .join(CampaignLead, CampaignLead.id == Message.campaign_lead_id)
        .where(first_touches, Message.status.in_(SENT_STATUSES), of_campaign)
        .group_by(CampaignLead.variant, Message.status)
    ).all()
    # The campaign's sends by its messages, as funnel_by_campaign counts them: an erased
    # lead's first touch stays in the ledger without its enrolment.
    sent = dict(session.execute(
        select(Message.status, func.count())
        .where(first_touches, Message.status.in_((*SENT_STATUSES, UNDELIVERED)))
        .group_by(Message.status)
    ).all())
    variants: dict[str, dict[str, Any]] = {
        str(variant): {"variant": str(variant), "enrolled": int(n), "sent": 0, "delivered": 0,
                       "replied": int(replied), "opted_out": int(opted_out.get(variant, 0))}
        for variant, n, replied in enrolled
    }
    for variant, status, n in sent_by_variant:
        row = variants[str(variant)]
        row["sent"] += int(n)
        if status == MessageStatus.delivered.value:
            row["delivered"] += int(n)
    campaign_id_, name, channel, status = found
    delivered = int(sent.get(MessageStatus.delivered.value, 0))
    total = {
        "campaign_id": campaign_id_, "campaign": name, "channel": channel, "status": status,
        "enrolled": sum(v["enrolled"] for v in variants.values()),
        "sent": int(sent.get(MessageStatus.sent.value, 0)) + delivered,
        "delivered": delivered,
        "undelivered": int(sent.get(UNDELIVERED, 0)),
        "replied": sum(v["replied"] for v in variants.values()),
        "opted_out": sum(v["opted_out"] for v in variants.values()),
    }
    return CampaignFunnel(_row_with_rates(total),
                          [_row_with_rates(variants[key]) for key in sorted(variants)])


def _require_campaign(session: Session, campaign_id: int) -> None:
    if session.scalar(select(Campaign.id).where(Campaign.id == campaign_id)) is None:
        raise NotFound(f"campaign {campaign_id} does not exist")


# --- charts ----------------------------------------------------------------------------------


def funnel_figure(row: pd.Series | dict[str, Any], title: str) -> go.Figure:
    """The five stages of one campaign (or a total) as a funnel chart."""
    values = [int(row[stage]) for stage in STAGES]
    figure = go.Figure(go.Funnel(y=[s.replace("_", " ") for s in STAGES], x=values,
                                 textinfo="value+percent initial"))
    figure.update_layout(title=title, showlegend=False, margin=charts.MARGIN)
    return figure


def breakdown_figure(frame: pd.DataFrame, by: Breakdown) -> go.Figure:
    """Sent and replied per group, with the reply rate on a second axis."""
    labels = frame[by].astype(str)
    figure = go.Figure([
        go.Bar(x=labels, y=frame["sent"], name="sent"),
        go.Bar(x=labels, y=frame["replied"], name="replied"),
        go.Scatter(x=labels, y=frame["reply_rate"], name="reply rate", yaxis="y2",
                   mode="lines+markers"),
    ])
    figure.update_layout(
        title=f"By {'hour of first send (UTC)' if by == 'hour' else by}", barmode="group",
        xaxis={"type": "category", "title": {"text": BREAKDOWN_TITLES[by]}},
        yaxis=charts.count_axis("leads"),
        yaxis2={**charts.count_axis("reply rate"), "overlaying": "y", "side": "right",
                "tickformat": ".0%"},
        # Above the plot: at Plotly's default place, right of the plot, it covered the
        # reply-rate axis and hid its top label.
        legend=charts.LEGEND_ABOVE, margin=charts.MARGIN_WITH_LEGEND,
    )
    return figure
