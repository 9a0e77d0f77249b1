"""The lead table: search, filters and paging done in SQL, tags, opt-out by hand, export."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, delete, exists, func, insert, or_, select, update

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.export import write_csv, write_xlsx
from core.leads.normalise import normalise_tags
from core.leads.search import search_needles
from core.models import AuditLog, Channel, Lead, LeadImport, LeadTag, Suppression, SuppressionReason
from core.permissions import Actor, Permission
from core.suppressions import remove_suppression_in, suppress_in, suppressed_addresses
from core.webhooks.events import EventType, emit, lead_opted_out_data

MAX_PAGE_SIZE = 500
OPT_OUT_ACTION = "leads.opt_out"
OPT_OUT_UNDO_ACTION = "leads.opt_out_undo"
EXPORT_BATCH = 5_000
TABLE_COLUMNS = ("id", "first_name", "last_name", "phone", "email", "company", "title",
                 "industry", "city", "country", "time_zone", "tags", "opted_out_at", "created_at")
EXPORT_COLUMNS = ("id", "first_name", "last_name", "phone", "email", "company", "title",
                  "website", "industry", "city", "country", "time_zone", "notes", "tags",
                  "custom_fields", "import_id", "opted_out_at", "created_at")


@dataclass(frozen=True)
class LeadFilter:
    """What the lead table shows: free-text search plus tag, import and opt-out filters."""

    search: str = ""
    tag: str | None = None
    import_id: int | None = None
    opted_out: bool | None = None  # None: both
    channel: Channel | None = None  # leads that can be reached on it (a phone for SMS, an email)
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class LeadPage:
    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class ImportView:
    id: int
    file_name: str
    status: str
    rows: int
    imported: int
    updated: int
    duplicates: int
    rejected: int
    created_at: datetime
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # on rows that were kept

    @property
    def label(self) -> str:
        return f"#{self.id} {self.file_name} ({self.created_at:%Y-%m-%d %H:%M})"


def lead_search_condition(query: str) -> ColumnElement[bool] | None:
    """The WHERE clause on Lead for a search as typed (None for a blank query): case and accents
    ignored, a phone found from any of its usual spellings (core.leads.search)."""
    needles = search_needles(query)
    if not needles:
        return None
    # Folded on both sides, so a plain LIKE (which the trigram index answers) is enough.
    return or_(*(Lead.search_text.contains(needle, autoescape=True) for needle in needles))


def _filtered(statement: Select[Any], where: LeadFilter) -> Select[Any]:
    matches = lead_search_condition(where.search)
    if matches is not None:
        statement = statement.where(matches)
    if where.tag:
        statement = statement.where(
            exists().where(LeadTag.lead_id == Lead.id, LeadTag.tag == where.tag)
        )
    if where.import_id is not None:
        statement = statement.where(Lead.import_id == where.import_id)
    if where.opted_out is True:
        statement = statement.where(Lead.opted_out_at.is_not(None))
    elif where.opted_out is False:
        statement = statement.where(Lead.opted_out_at.is_(None))
    if where.channel is Channel.sms:
        statement = statement.where(Lead.phone.is_not(None))
    elif where.channel is Channel.email:
        statement = statement.where(Lead.email.is_not(None))
    if where.created_from is not None:
        statement = statement.where(Lead.created_at >= where.created_from)
    if where.created_before is not None:
        statement = statement.where(Lead.created_at < where.created_before)
    return statement


def _tags_by_lead(session: Any, lead_ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    if lead_ids:
        for lead_id, tag in session.execute(
            select(LeadTag.lead_id, LeadTag.tag).where(LeadTag.lead_id.in_(lead_ids)).order_by(LeadTag.tag)
        ):
            tags.setdefault(lead_id, []).append(tag)
    return tags


def list_leads(
    db: Database, actor: Actor, where: LeadFilter = LeadFilter(), *, page: int = 1, page_size: int = 50
) -> LeadPage:
    """One page of the filtered leads, newest first; counting and paging happen in the database."""
    actor.require(Permission.view_leads)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        total = session.scalar(_filtered(select(func.count(Lead.id)), where)) or 0
        page = max(1, min(page, max(1, -(-total // page_size))))
        columns = [getattr(Lead, c) for c in TABLE_COLUMNS if c != "tags"]
        rows = session.execute(
            _filtered(select(*columns), where)
            .order_by(Lead.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        tags = _tags_by_lead(session, [r.id for r in rows])
    records = [{**r._asdict(), "tags": ", ".join(tags.get(r.id, []))} for r in rows]
    frame = pd.DataFrame(records, columns=list(TABLE_COLUMNS))
    return LeadPage(rows=frame, total=int(total), page=page, page_size=page_size)


@dataclass(frozen=True)
class LeadSummary:
    """One row of the lead table, as a list of leads hands it out (the API's `GET /leads`)."""

    id: int
    first_name: str | None
    last_name: str | None
    phone: str | None
    email: str | None
    company: str | None
    title: str | None
    industry: str | None
    city: str | None
    country: str | None
    time_zone: str | None
    tags: list[str]
    opted_out_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class LeadSlice:
    rows: list[LeadSummary]
    more: bool  # rows after the last one match too


def leads_after(
    db: Database, actor: Actor, where: LeadFilter = LeadFilter(), *,
    after: tuple[datetime, int] | None = None, limit: int = 50,
) -> LeadSlice:
    """The filtered leads, newest first, from just after `after` (the last row's created_at and id).

    Keyset paging on (created_at, id), which the (tenant_id, created_at) index walks in order,
    a created range included: a page costs the same at the millionth lead, with no count and no
    offset, and leads added meanwhile sort above every page already handed out, so none is
    skipped or repeated.
    """
    actor.require(Permission.view_leads)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    columns = [getattr(Lead, c) for c in TABLE_COLUMNS if c != "tags"]
    statement = _filtered(select(*columns), where)
    if after is not None:
        at, last_id = after
        # Spelled so that `created_at <= :at` bounds the index scan; the id breaks ties.
        statement = statement.where(Lead.created_at <= at, or_(Lead.created_at < at, Lead.id < last_id))
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            statement.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit + 1)
        ).all()
        page = rows[:limit]
        tags = _tags_by_lead(session, [r.id for r in page])
    return LeadSlice(
        rows=[LeadSummary(**r._asdict(), tags=tags.get(r.id, [])) for r in page], more=len(rows) > limit
    )


def list_tags(db: Database, actor: Actor) -> list[tuple[str, int]]:
    """Every tag of the tenant with how many leads carry it, most used first."""
    actor.require(Permission.view_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            select(LeadTag.tag, func.count(LeadTag.lead_id))
            .group_by(LeadTag.tag)
            .order_by(func.count(LeadTag.lead_id).desc(), LeadTag.tag)
        ).all()
    return [(tag, int(count)) for tag, count in rows]


def list_imports(db: Database, actor: Actor, limit: int = 50) -> list[ImportView]:
    actor.require(Permission.view_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        imports = session.execute(
            select(LeadImport.id, LeadImport.file_name, LeadImport.status, LeadImport.rows_total,
                   LeadImport.rows_imported, LeadImport.rows_updated, LeadImport.rows_duplicate,
                   LeadImport.rows_rejected, LeadImport.created_at)
            .order_by(LeadImport.id.desc())
            .limit(limit)
        ).all()
    return [ImportView(*row) for row in imports]


def get_import(db: Database, actor: Actor, import_id: int) -> ImportView:
    """One import with its rejects and its warnings (for the downloads)."""
    actor.require(Permission.manage_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        found = session.scalar(select(LeadImport).where(LeadImport.id == import_id))
        if found is None:
            raise NotFound(f"import #{import_id} does not exist")
        return ImportView(found.id, found.file_name, found.status, found.rows_total,
                          found.rows_imported, found.rows_updated, found.rows_duplicate,
                          found.rows_rejected, found.created_at, list(found.rejects), list(found.warnings))


def rejects_frame(rejects: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The rejected rows for download: row, reason, then the row's original cells."""
    headers: list[str] = []
    for reject in rejects:
        for header in reject.get("values", {}):
            if header not in headers:
                headers.append(header)
    records = [
        {"row": r["row"], "reason": r["reason"], **{h: r.get("values", {}).get(h, "") for h in headers}}
        for r in rejects
    ]
    return pd.DataFrame(records, columns=["row", "reason", *headers])


def warnings_frame(warnings: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The warnings on imported rows for download: row and what was changed or left out."""
    return pd.DataFrame([{"row": w["row"], "warning": w["warning"]} for w in warnings],
                        columns=["row", "warning"])


def _owned_ids(session: Any, lead_ids: Sequence[int]) -> list[int]:
    ids = sorted(set(lead_ids))
    if not ids:
        raise ValidationError("select at least one lead")
    owned = list(session.scalars(select(Lead.id).where(Lead.id.in_(ids))))
    if len(owned) != len(ids):
        raise NotFound("some of the selected leads do not exist (any more)")
    return owned


def add_tags(db: Database, actor: Actor, lead_ids: Sequence[int], tags: str | Sequence[str]) -> int:
    """Tag the leads; returns how many (lead, tag) pairs were new."""
    actor.require(Permission.manage_leads)
    wanted = normalise_tags(tags if isinstance(tags, str) else ",".join(tags))
    if not wanted:
        raise ValidationError("type at least one tag")
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        ids = _owned_ids(session, lead_ids)
        present = {
            (lead_id, tag)
            for lead_id, tag in session.execute(
                select(LeadTag.lead_id, LeadTag.tag).where(LeadTag.lead_id.in_(ids), LeadTag.tag.in_(wanted))
            )
        }
        rows = [{"tenant_id": actor.tenant_id, "lead_id": i, "tag": t}
                for i in ids for t in wanted if (i, t) not in present]
        if rows:
            session.execute(insert(LeadTag), rows)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="leads.tag",
                     entity="lead", details={"lead_ids": ids, "tags": wanted})
    return len(rows)


def remove_tag(db: Database, actor: Actor, lead_ids: Sequence[int], tag: str) -> int:
    actor.require(Permission.manage_leads)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        ids = _owned_ids(session, lead_ids)
        result = session.execute(
            delete(LeadTag).where(LeadTag.lead_id.in_(ids), LeadTag.tag == tag.strip().lower())
        )
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="leads.untag",
                     entity="lead", details={"lead_ids": ids, "tag": tag})
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class OptOutPlan:
    """What opting the chosen leads out would do, for the confirmation before it."""

    lead_ids: tuple[int, ...]
    names: tuple[str, ...]  # the first few, for the confirmation to show
    already_opted_out: int
    addresses: int  # their phones and emails
    already_suppressed: int

    @property
    def leads(self) -> int:
        return len(self.lead_ids)


@dataclass(frozen=True)
class OptOutDone:
    """What a bulk opt-out did; `action_id` (its audit entry) is what undoes it."""

    action_id: int
    leads: int  # opted out by this action (not those opted out before)
    suppressions: int  # addresses suppressed by this action


@dataclass(frozen=True)
class OptOutUndone:
    leads: int  # opted back in
    suppressions: int  # removed
    kept: int  # suppressions that came from the recipient since (a STOP): they stay


OPT_OUT_NAMES_SHOWN = 10


def lead_name(row: Any) -> str:
    """What a person calls the lead: its name, else its email or phone, else its number."""
    name = " ".join(p for p in (row.first_name, row.last_name) if p)
    return name or row.email or row.phone or f"lead #{row.id}"


def plan_opt_out(db: Database, actor: Actor, lead_ids: Sequence[int]) -> OptOutPlan:
    """Count what `opt_out_leads` would change, so the page can ask before it acts."""
    actor.require(Permission.manage_leads)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        ids = _owned_ids(session, lead_ids)
        rows = session.execute(
            select(Lead.id, Lead.first_name, Lead.last_name, Lead.phone, Lead.email, Lead.opted_out_at)
            .where(Lead.id.in_(ids))
            .order_by(Lead.id)
        ).all()
        phones = {r.phone for r in rows if r.phone}
        emails = {r.email for r in rows if r.email}
        suppressed = len(suppressed_addresses(session, Channel.sms, phones))
        suppressed += len(suppressed_addresses(session, Channel.email, emails))
    names = tuple(lead_name(r) for r in rows)
    return OptOutPlan(
        lead_ids=tuple(ids),
        names=names[:OPT_OUT_NAMES_SHOWN],
        already_opted_out=sum(1 for r in rows if r.opted_out_at is not None),
        addresses=len(phones) + len(emails),
        already_suppressed=suppressed,
    )


def opt_out(db: Database, actor: Actor, lead_ids: Sequence[int]) -> int:
    """Opt the leads out by hand and suppress their phone and email; returns how many changed."""
    return opt_out_leads(db, actor, lead_ids).leads


def opt_out_leads(db: Database, actor: Actor, lead_ids: Sequence[int]) -> OptOutDone:
    """Opt the leads out by hand and suppress their phones and emails, recording in the audit log
    exactly what changed, so that `undo_opt_out` can take back this action and nothing else."""
    actor.require(Permission.manage_leads)
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        ids = _owned_ids(session, lead_ids)
        rows = session.execute(
            select(Lead.id, Lead.phone, Lead.email, Lead.opted_out_at).where(Lead.id.in_(ids))
        ).all()
        changed = [r.id for r in rows if r.opted_out_at is None]
        if changed:
            session.execute(update(Lead).where(Lead.id.in_(changed)).values(opted_out_at=now, updated_at=now))
            for lead_id in changed:
                emit(session, actor.tenant_id, EventType.lead_opted_out,
                     lead_opted_out_data(lead_id, now=now, channel=None, reason=SuppressionReason.manual),
                     now=now)
        source = f"opted out by hand by {actor.username or 'system'}"
        added = suppress_in(session, actor.tenant_id, Channel.sms, [r.phone for r in rows if r.phone],
                            SuppressionReason.manual, source)
        added += suppress_in(session, actor.tenant_id, Channel.email, [r.email for r in rows if r.email],
                             SuppressionReason.manual, source)
        entry = record_audit(
            session, tenant_id=actor.tenant_id, user_id=actor.user_id, action=OPT_OUT_ACTION,
            entity="lead",
            details={"lead_ids": ids, "opted_out_lead_ids": changed, "suppression_ids": added,
                     "opted_out_at": now.isoformat()},
        )
        session.flush()
        return OptOutDone(action_id=entry.id, leads=len(changed), suppressions=len(added))


def undo_opt_out(db: Database, actor: Actor, action_id: int) -> OptOutUndone:
    """Take back one bulk opt-out: remove exactly the suppressions it added (through the
    suppression-removal service, each audit-logged) and opt its leads back in, unless something
    else opted them out since. A STOP or bounce that came in meanwhile stays."""
    actor.require(Permission.manage_leads)
    actor.require(Permission.manage_suppressions)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        entry = session.get(AuditLog, action_id)
        if entry is None or entry.action != OPT_OUT_ACTION or entry.tenant_id != actor.tenant_id:
            raise NotFound("that opt-out is not in the audit log; nothing was undone")
        already = session.scalar(
            select(AuditLog.id).where(AuditLog.action == OPT_OUT_UNDO_ACTION,
                                      AuditLog.entity_id == str(action_id)).limit(1)
        )
        if already is not None:
            raise Conflict("that opt-out was undone already")
        details = entry.details
        reasons = dict(
            session.execute(
                select(Suppression.id, Suppression.reason).where(
                    Suppression.id.in_(details.get("suppression_ids", []))
                )
            ).all()
        )
        removable = [i for i, reason in reasons.items() if reason == SuppressionReason.manual.value]
        for suppression_id in sorted(removable):
            remove_suppression_in(session, actor, suppression_id)
        at = datetime.fromisoformat(details["opted_out_at"])
        candidates = session.execute(
            select(Lead.id, Lead.opted_out_at).where(Lead.id.in_(details.get("opted_out_lead_ids", [])))
        ).all()
        restored = [r.id for r in candidates if r.opted_out_at == at]
        if restored:
            back_in = {"opted_out_at": None, "updated_at": datetime.now(UTC)}
            session.execute(update(Lead).where(Lead.id.in_(restored)).values(**back_in))
        record_audit(
            session, tenant_id=actor.tenant_id, user_id=actor.user_id, action=OPT_OUT_UNDO_ACTION,
            entity="audit_log", entity_id=action_id,
            details={"lead_ids": restored, "suppression_ids": sorted(removable),
                     "kept_suppression_ids": sorted(set(reasons) - set(removable))},
        )
    return OptOutUndone(leads=len(restored), suppressions=len(removable), kept=len(reasons) - len(removable))


def _export_rows(db: Database, actor: Actor, where: LeadFilter) -> Iterator[list[Any]]:
    columns = [getattr(Lead, c) for c in EXPORT_COLUMNS if c != "tags"]
    last_id = 0
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        while True:
            # Keyset paging: memory stays flat however many leads there are.
            batch = session.execute(
                _filtered(select(*columns), where)
                .where(Lead.id > last_id)
                .order_by(Lead.id)
                .limit(EXPORT_BATCH)
            ).all()
            if not batch:
                return
            tags = _tags_by_lead(session, [r.id for r in batch])
            for r in batch:
                record = r._asdict()
                record["tags"] = ", ".join(tags.get(r.id, []))
                record["custom_fields"] = _custom_text(record["custom_fields"])
                yield [record[c] for c in EXPORT_COLUMNS]
            last_id = batch[-1].id


def _custom_text(custom: dict[str, Any] | None) -> str:
    return "; ".join(f"{k}: {v}" for k, v in (custom or {}).items())


def export_leads(db: Database, actor: Actor, out: Path | Any, *, fmt: str = "csv",
                 where: LeadFilter = LeadFilter()) -> int:
    """Write the filtered leads to a path or binary file as injection-safe CSV or XLSX; returns the count."""
    actor.require(Permission.manage_leads)
    rows = _export_rows(db, actor, where)
    count = 0

    def counted() -> Iterator[list[Any]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    if fmt == "xlsx":
        write_xlsx(EXPORT_COLUMNS, counted(), str(out) if isinstance(out, Path) else out, "Leads")
        return count
    if fmt != "csv":
        raise ValidationError(f"export format '{fmt}' is not known; use csv or xlsx")
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            write_csv(EXPORT_COLUMNS, counted(), handle)
    else:
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        write_csv(EXPORT_COLUMNS, counted(), text)
        text.flush()
        text.detach()
    return count


def export_leads_bytes(
    db: Database, actor: Actor, fmt: str = "csv", where: LeadFilter = LeadFilter()
) -> bytes:
    buffer = io.BytesIO()
    export_leads(db, actor, buffer, fmt=fmt, where=where)
    return buffer.getvalue()
