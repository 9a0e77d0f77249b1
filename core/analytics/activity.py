"""Activity over time: replies per day, what each user did, and the audit log as a file.

Replies and first touches per day are GROUP BYs in SQL (UTC days). Per-user activity counts the
audit log by user and action in SQL and names the actions a manager asks about. The export
writes the audit log in pages of rows, so a long log never sits in memory at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import IO, Any, Literal

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import func, select

from core.analytics import charts
from core.analytics.costs import as_dates
from core.analytics.funnel import SENT_STATUSES
from core.analytics.period import ALL_TIME, Period
from core.audit import audit_conditions
from core.db import Database
from core.export import write_csv
from core.models import AuditLog, CampaignLead, Message, User
from core.permissions import Actor, Permission

ExportFormat = Literal["csv", "jsonl"]
EXPORT_COLUMNS = ("time", "user", "action", "entity", "entity_id", "details")
EXPORT_PAGE_ROWS = 2_000
SYSTEM_USER = "system"
OTHER_ACTIONS = "Other actions"
# (entity, action) -> the column a manager reads; everything else adds up under OTHER_ACTIONS.
ACTIVITY_LABELS: dict[tuple[str, str], str] = {
    ("campaign", "create"): "Campaigns created",
    ("campaign", "start"): "Campaigns started",
    ("campaign", "schedule"): "Campaigns started",
    ("campaign", "pause"): "Pauses",
    ("campaign", "cancel"): "Cancellations",
    ("campaign_lead", "draft.approve"): "Drafts approved",
    ("campaign_lead", "draft.reject"): "Drafts rejected",
    ("lead_import", "leads.import"): "Imports",
    ("lead", "leads.opt_out"): "Opt-outs",
    ("lead", "reply"): "Replies recorded",
}


def replies_over_time(db: Database, actor: Actor, period: Period = ALL_TIME) -> pd.DataFrame:
    """Per UTC day: leads first contacted (a first touch sent) and leads that replied.

    Both count distinct leads, as the Overview's reply rate does; a day with neither is absent.
    """
    actor.require(Permission.view_reports)
    sent_day = func.date(Message.sent_at)
    reply_day = func.date(CampaignLead.replied_at)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        contacted = session.execute(
            select(sent_day, func.count(func.distinct(Message.lead_id)))
            .where(Message.step == 0, Message.status.in_(SENT_STATUSES), Message.sent_at.is_not(None),
                   *period.conditions(Message.sent_at))
            .group_by(sent_day)
        ).all()
        replied = session.execute(
            select(reply_day, func.count(func.distinct(CampaignLead.lead_id)))
            .where(CampaignLead.replied_at.is_not(None), *period.conditions(CampaignLead.replied_at))
            .group_by(reply_day)
        ).all()
    frame = pd.DataFrame([tuple(r) for r in contacted], columns=["day", "contacted"]).merge(
        pd.DataFrame([tuple(r) for r in replied], columns=["day", "replied"]), on="day", how="outer")
    if frame.empty:
        return pd.DataFrame({"day": pd.Series(dtype=object), "contacted": pd.Series(dtype="int64"),
                             "replied": pd.Series(dtype="int64")})
    frame["day"] = as_dates(frame["day"])
    frame = frame.groupby("day", as_index=False).sum()
    for column in ("contacted", "replied"):
        frame[column] = frame[column].fillna(0).astype("int64")
    return frame.sort_values("day", ignore_index=True)


def replies_figure(by_day: pd.DataFrame, period: Period) -> go.Figure:
    """Leads contacted and leads that replied, per day, as bars from zero."""
    if by_day.empty:
        return charts.empty_figure("Replies per day", f"No first touches or replies in {period.describe()}.")
    figure = go.Figure([
        go.Bar(x=by_day["day"].tolist(), y=by_day["contacted"].tolist(), name="leads first contacted"),
        go.Bar(x=by_day["day"].tolist(), y=by_day["replied"].tolist(), name="leads that replied"),
    ])
    first: date = by_day["day"].min()
    last: date = by_day["day"].max()
    figure.update_layout(title="Replies per day", barmode="group", xaxis=charts.day_axis(first, last),
                         yaxis=charts.count_axis("leads"), legend=charts.LEGEND_ABOVE,
                         margin=charts.MARGIN_WITH_LEGEND)
    return figure


def user_activity(db: Database, actor: Actor, period: Period = ALL_TIME) -> pd.DataFrame:
    """One row per user who did something in `period`: counts of the actions managers ask about."""
    actor.require(Permission.view_audit_log)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            select(AuditLog.user_id, User.name, User.username, AuditLog.entity, AuditLog.action,
                   func.count())
            .outerjoin(User, User.id == AuditLog.user_id)
            .where(*period.conditions(AuditLog.created_at))
            .group_by(AuditLog.user_id, User.name, User.username, AuditLog.entity, AuditLog.action)
        ).all()
    columns = list(dict.fromkeys(ACTIVITY_LABELS.values())) + [OTHER_ACTIONS]
    if not rows:
        return pd.DataFrame(columns=["user", *columns])
    long = pd.DataFrame(
        [{"user": (f"{name} ({username})" if name and username else username or name or SYSTEM_USER),
          "activity": ACTIVITY_LABELS.get((entity, action), OTHER_ACTIONS), "count": int(count)}
         for _user_id, name, username, entity, action, count in rows])
    table = long.pivot_table(index="user", columns="activity", values="count", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=columns, fill_value=0).astype("int64").reset_index()
    table.columns.name = None
    return table.sort_values(columns, ascending=False, ignore_index=True)


def _export_rows(db: Database, actor: Actor, conditions: list[Any]) -> Iterator[tuple[Any, ...]]:
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        result = session.execute(
            select(AuditLog.created_at, User.username, AuditLog.action, AuditLog.entity,
                   AuditLog.entity_id, AuditLog.details)
            .outerjoin(User, User.id == AuditLog.user_id)
            .where(*conditions)
            .order_by(AuditLog.created_at, AuditLog.id)
            .execution_options(yield_per=EXPORT_PAGE_ROWS)
        )
        for created_at, username, action, entity, entity_id, details in result:
            yield (created_at.isoformat(), username or SYSTEM_USER, action, entity, entity_id or "",
                   json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str))


def export_audit_log(
    db: Database,
    actor: Actor,
    out: IO[str],
    *,
    period: Period = ALL_TIME,
    user_id: int | None = None,
    action: str | None = None,
    fmt: ExportFormat = "csv",
) -> int:
    """Write the audit log entries the filters select to `out`, oldest first; the number written.

    CSV cells a spreadsheet would run as formulas are neutralised; JSON lines hold one object
    per entry with the same keys as the CSV's columns.
    """
    actor.require(Permission.view_audit_log)
    conditions = audit_conditions(user_id=user_id, action=action, since=period.start, until=period.end)
    written = 0

    def counted() -> Iterator[tuple[Any, ...]]:
        nonlocal written
        for row in _export_rows(db, actor, conditions):
            written += 1
            yield row

    if fmt == "csv":
        write_csv(EXPORT_COLUMNS, counted(), out)
    else:
        for row in counted():
            out.write(json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)), ensure_ascii=False) + "\n")
    return written


__all__ = [
    "ACTIVITY_LABELS",
    "export_audit_log",
    "replies_figure",
    "replies_over_time",
    "user_activity",
]
