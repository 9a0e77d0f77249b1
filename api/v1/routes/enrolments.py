"""A campaign's enrolments, a page at a time, and one enrolment's node-by-node log with its trace
id: what the Run monitor lists and shows on its drill-down (core.monitor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.v1.cursors import BadCursor, decode_cursor, encode_cursor
from api.v1.deps import ActorDep
from api.v1.etags import with_etag
from api.v1.models.campaigns import Enrolment, EnrolmentDetail
from api.v1.schemas import Page
from core.db import Database
from core.models import EnrolmentStatus
from core.monitor import enrolment_page, enrolment_trace

router = APIRouter(tags=["enrolments"])
NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such one in your organisation"}}


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _after_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    (last_id,) = decode_cursor(cursor, 1)
    if not isinstance(last_id, int):
        raise BadCursor("the cursor is not one this API gave out; start again without it")
    return last_id


@router.get("/campaigns/{campaign_id}/enrolments", response_model=Page[Enrolment], responses=NOT_FOUND)
def list_enrolments(
    request: Request,
    actor: ActorDep,
    campaign_id: int,
    status: EnrolmentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Page[Enrolment]:
    """The campaign's enrolments in the order they were enrolled, optionally of one status."""
    rows = enrolment_page(
        _database(request),
        actor,
        campaign_id,
        status=status.value if status else None,
        after_id=_after_id(cursor),
        limit=limit + 1,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return Page[Enrolment](
        items=[Enrolment.of(r) for r in page],
        next_cursor=encode_cursor(page[-1].campaign_lead_id) if more else None,
    )


@router.get("/enrolments/{enrolment_id}", response_model=EnrolmentDetail, responses=NOT_FOUND)
def read_enrolment(request: Request, actor: ActorDep, enrolment_id: int) -> Response:
    """One enrolment: its state, node-by-node log, model calls, messages and trace id."""
    return with_etag(request, EnrolmentDetail.of(enrolment_trace(_database(request), actor, enrolment_id)))
