"""Leads: list (filters, keyset cursor), get, create, update, erase, tags, opt-out and opt-in, import.

Every route calls the core service the Leads page calls; core decides who may (managers read,
admins and the owner write, analysts never see a person) and scopes the tenant, so another
tenant's lead answers 404 like one that never was.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DatabaseDep
from api.v1.cursors import BadCursor, decode_cursor, encode_cursor
from api.v1.deps import ActorDep
from api.v1.etags import with_etag
from api.v1.schemas import Page, UtcDateTime
from core.db import Database
from core.errors import ValidationError
from core.leads.detail import LeadDetail, create_lead, lead_detail, update_lead
from core.leads.erasure import erase_lead
from core.leads.importer import ImportSummary, import_leads
from core.leads.queries import LeadFilter, LeadSummary, add_tags, leads_after, opt_out_leads, remove_tag
from core.models import Channel
from core.permissions import Actor
from core.suppressions import opt_in_lead

router = APIRouter(tags=["leads"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class LeadListItem(BaseModel):
    id: int
    first_name: str | None
    last_name: str | None
    phone: str | None = Field(description="E.164")
    email: str | None
    company: str | None
    title: str | None
    industry: str | None
    city: str | None
    country: str | None = Field(description="ISO 3166-1 alpha-2")
    time_zone: str | None = Field(description="IANA name")
    tags: list[str]
    opted_out: bool
    opted_out_at: UtcDateTime | None
    created_at: UtcDateTime

    @classmethod
    def of(cls, row: LeadSummary) -> LeadListItem:
        return cls(**vars(row), opted_out=row.opted_out_at is not None)


class Alternate(BaseModel):
    channel: str = Field(examples=["sms"])
    value: str = Field(description="E.164 phone or normalised email")
    label: str | None = Field(default=None, description="The column of the import it came from")


class Suppressed(BaseModel):
    channel: str
    address: str
    reason: str
    source: str | None
    since: UtcDateTime


class LeadOut(BaseModel):
    id: int
    name: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    email: str | None
    company: str | None
    title: str | None
    website: str | None
    industry: str | None
    city: str | None
    country: str | None
    time_zone: str | None
    notes: str | None
    alternates: list[Alternate]
    tags: list[str]
    custom_fields: dict[str, Any]
    opted_out: bool
    opted_out_at: UtcDateTime | None
    suppressions: list[Suppressed] = Field(description="Suppressions on any of the lead's addresses")
    replied_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime

    @classmethod
    def of(cls, lead: LeadDetail) -> LeadOut:
        return cls(
            id=lead.id,
            name=lead.name,
            **lead.fields,
            alternates=[Alternate(**a) for a in lead.alternates if isinstance(a, dict)],
            tags=lead.tags,
            custom_fields=lead.custom_fields,
            opted_out=lead.opted_out_at is not None,
            opted_out_at=lead.opted_out_at,
            suppressions=[Suppressed(**vars(s)) for s in lead.suppressions],
            replied_at=lead.replied_at,
            created_at=lead.created_at,
            updated_at=lead.updated_at,
        )


class LeadFields(BaseModel):
    """The fields a person types, read as an import reads them (phones in the tenant's country)."""

    model_config = ConfigDict(extra="forbid")

    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = Field(default=None, examples=["(415) 555-0128"])
    email: str | None = Field(default=None, examples=["ada@example.com"])
    company: str | None = None
    title: str | None = None
    website: str | None = None
    industry: str | None = None
    city: str | None = None
    country: str | None = None
    time_zone: str | None = None
    notes: str | None = None


class LeadCreate(LeadFields):
    tags: list[str] = Field(default_factory=list)


class LeadUpdate(LeadFields):
    """Only the fields sent change; a field sent as null or "" is cleared. `tags` replaces the tags."""

    tags: list[str] | None = None


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(min_length=1, examples=[["vip", "spring"]])


class OptOutOut(BaseModel):
    lead: LeadOut
    changed: bool = Field(description="False when the lead was opted out already")
    suppressions_added: int
    action_id: int = Field(description="The audit entry of this opt-out")


class OptInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, description="Why (for instance, how the person asked); audited")


class OptInOut(BaseModel):
    lead: LeadOut
    suppressions_removed: list[str]
    suppressions_kept: list[str] = Field(description="Addresses that stay suppressed (bounces)")


class ErasureOut(BaseModel):
    lead_id: int
    tags: int
    enrolments: int
    messages_anonymised: int
    suppressions_added: int
    audit_entries_redacted: int


class Reject(BaseModel):
    row: int
    reason: str
    values: dict[str, Any] = Field(default_factory=dict, description="The row's cells as read")


class RowWarning(BaseModel):
    row: int
    warning: str


class ImportReport(BaseModel):
    """The report the dashboard shows after an import."""

    import_id: int
    file_name: str
    rows: int
    imported: int
    updated: int
    duplicates: int
    rejected: int
    with_warnings: int
    rejects: list[Reject]
    warnings: list[RowWarning]

    @classmethod
    def of(cls, summary: ImportSummary) -> ImportReport:
        return cls(
            **summary.counts(),
            file_name=summary.file_name,
            rejects=[Reject(**r) for r in summary.rejects],
            warnings=[RowWarning(row=w["row"], warning=w["warning"]) for w in summary.warnings],
        )


def lead_record(database: Database, actor: Actor, lead_id: int) -> LeadDetail:
    """The lead as LeadOut shows it: its record without the history LeadOut leaves out."""
    return lead_detail(database, actor, lead_id, history=False)


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without an offset ("2026-12-01" or "2026-12-01T09:00") is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _after(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    at, last_id = decode_cursor(cursor, 2)
    try:
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(last_id, int):
            raise ValueError("a cursor holds an aware time and an id")
    except (TypeError, ValueError):
        raise BadCursor("the cursor is not one this API gave out; start again without it") from None
    return moment, last_id


@router.get("/leads", response_model=Page[LeadListItem])
def list_leads(
    database: DatabaseDep,
    actor: ActorDep,
    search: Annotated[str, Query(description="As the Leads page searches: name, email, company, phone")] = "",
    tag: str | None = None,
    opted_out: bool | None = None,
    channel: Annotated[Channel | None, Query(description="Leads with a phone (sms) or an email")] = None,
    created_from: Annotated[
        datetime | None, Query(description="Created at or after (ISO 8601; UTC without an offset)")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Created before (ISO 8601; UTC without an offset)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[LeadListItem]:
    """The leads newest first (by created_at, then id), a page at a time: pass `next_cursor` back
    as `cursor`; leads added meanwhile never shift a page."""
    created_from, created_before = _utc(created_from), _utc(created_before)
    where = LeadFilter(
        search=search,
        tag=tag.strip().lower() if tag else None,
        opted_out=opted_out,
        channel=channel,
        created_from=created_from,
        created_before=created_before,
    )
    found = leads_after(database, actor, where, after=_after(cursor), limit=limit)
    last = found.rows[-1] if found.more and found.rows else None
    return Page(
        items=[LeadListItem.of(row) for row in found.rows],
        next_cursor=encode_cursor(last.created_at.isoformat(), last.id) if last else None,
    )


@router.get("/leads/{lead_id}", response_model=LeadOut)
def get_lead(lead_id: int, request: Request, database: DatabaseDep, actor: ActorDep) -> Response:
    return with_etag(request, LeadOut.of(lead_record(database, actor, lead_id)))


@router.post("/leads", response_model=LeadOut, status_code=201)
def create(body: LeadCreate, response: Response, database: DatabaseDep, actor: ActorDep) -> LeadOut:
    """Add one lead, read and checked as an imported row is; a phone or email another lead has
    already answers 409 naming that lead (`lead_id`)."""
    values = body.model_dump(exclude={"tags"})
    lead_id = create_lead(database, actor, values, body.tags)
    response.headers["Location"] = f"/api/v1/leads/{lead_id}"
    return LeadOut.of(lead_record(database, actor, lead_id))


@router.patch("/leads/{lead_id}", response_model=LeadOut)
def update(lead_id: int, body: LeadUpdate, database: DatabaseDep, actor: ActorDep) -> LeadOut:
    sent = body.model_dump(exclude_unset=True)
    tags = sent.pop("tags", None)
    update_lead(database, actor, lead_id, sent, ",".join(tags) if tags is not None else None)
    return LeadOut.of(lead_record(database, actor, lead_id))


@router.delete("/leads/{lead_id}", response_model=ErasureOut)
def erase(
    lead_id: int,
    database: DatabaseDep,
    actor: ActorDep,
    confirm: Annotated[str, Query(description="The lead's name (its `name`), as the Leads page asks")],
) -> ErasureOut:
    """Erase the lead on request (GDPR art. 17), as the lead's page does: the lead goes, its sent
    messages stay anonymised, its addresses stay suppressed. `confirm` must be the lead's name."""
    done = erase_lead(database, actor, lead_id, confirm=confirm)
    return ErasureOut(
        lead_id=done.lead_id,
        tags=done.tags,
        enrolments=done.enrolments,
        messages_anonymised=done.messages,
        suppressions_added=done.suppressions_added,
        audit_entries_redacted=done.audit_entries_redacted,
    )


@router.post("/leads/{lead_id}/tags", response_model=LeadOut)
def tag(lead_id: int, body: TagsIn, database: DatabaseDep, actor: ActorDep) -> LeadOut:
    """Add tags (those the lead has already stay once)."""
    add_tags(database, actor, [lead_id], body.tags)
    return LeadOut.of(lead_record(database, actor, lead_id))


@router.delete("/leads/{lead_id}/tags/{tag}", response_model=LeadOut)
def untag(lead_id: int, tag: str, database: DatabaseDep, actor: ActorDep) -> LeadOut:
    remove_tag(database, actor, [lead_id], tag)
    return LeadOut.of(lead_record(database, actor, lead_id))


@router.post("/leads/{lead_id}/opt-out", response_model=OptOutOut)
def opt_out(lead_id: int, database: DatabaseDep, actor: ActorDep) -> OptOutOut:
    """Opt the lead out by hand and suppress its phone and email (audited)."""
    done = opt_out_leads(database, actor, [lead_id])
    return OptOutOut(
        lead=LeadOut.of(lead_record(database, actor, lead_id)),
        changed=done.leads == 1,
        suppressions_added=done.suppressions,
        action_id=done.action_id,
    )


@router.post("/leads/{lead_id}/opt-in", response_model=OptInOut)
def opt_in(lead_id: int, body: OptInIn, database: DatabaseDep, actor: ActorDep) -> OptInOut:
    """Opt the lead back in, with the reason; 409 while the person's own STOP or unsubscribe stands."""
    done = opt_in_lead(database, actor, lead_id, reason=body.reason)
    return OptInOut(
        lead=LeadOut.of(lead_record(database, actor, lead_id)),
        suppressions_removed=list(done.removed),
        suppressions_kept=[s.address for s in done.kept],
    )


MAPPING_SHAPE = 'mapping must be a JSON object of column -> field, e.g. {"Mobile": "phone"}'


class BadMapping(ValidationError):
    field = "mapping"


def _mapping(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        mapping = json.loads(raw)
    except ValueError:
        raise BadMapping(MAPPING_SHAPE) from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise BadMapping(MAPPING_SHAPE)
    return {str(k): v for k, v in mapping.items()}


@router.post("/leads/import", response_model=ImportReport, status_code=201)
def import_file(
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="CSV or XLSX")],
    mapping: Annotated[str | None, Form(description="JSON object: column -> lead field")] = None,
    on_duplicate: Annotated[str, Form(description="skip, fill or overwrite")] = "skip",
    tags: Annotated[str, Form(description="Tags for every imported lead, comma-separated")] = "",
    sheet: Annotated[str | None, Form(description="The XLSX sheet (the first by default)")] = None,
    phone_country: Annotated[str | None, Form(description="Country of national numbers")] = None,
) -> ImportReport:
    """Import a spreadsheet as the dashboard does, all accepted rows or none; the report lists
    every rejected row with its reason and every warning. An unreadable file answers 422."""
    summary = import_leads(
        database,
        actor,
        file_name=file.filename or "upload.csv",
        data=file.file.read(),
        mapping=_mapping(mapping),
        on_duplicate=on_duplicate,
        tags=[t for t in tags.split(",") if t.strip()],
        sheet=sheet or None,
        phone_country=phone_country or None,
    )
    return ImportReport.of(summary)
