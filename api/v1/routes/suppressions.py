"""Suppressions: the addresses no campaign may message; list (keyset cursor), add by hand, remove.

The same core services as the Suppressions section and the CLI: admins and the owner only, a STOP,
an unsubscribe or a bounce can never be removed (409), every change is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DatabaseDep
from api.v1.cursors import BadCursor, decode_cursor, encode_cursor
from api.v1.deps import ActorDep
from api.v1.schemas import Page, UtcDateTime
from core.models import Channel
from core.suppressions import SuppressionView, remove_suppression, suppress_address, suppressions_after

router = APIRouter(tags=["suppressions"])


class SuppressionOut(BaseModel):
    id: int
    channel: str
    address: str = Field(description="E.164 phone or normalised email")
    reason: str = Field(description="stop, unsubscribe, bounce, manual or erasure")
    source: str | None
    created_at: UtcDateTime

    @classmethod
    def of(cls, view: SuppressionView) -> SuppressionOut:
        return cls(**vars(view))


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    address: str = Field(min_length=1, description="As typed: it is normalised like an import's")


class LeadStanding(BaseModel):
    lead_id: int
    name: str
    opted_out: bool = Field(description="Still opted out: opting it back in is POST /leads/{id}/opt-in")


class SuppressionRemovedOut(BaseModel):
    channel: str
    address: str
    leads: list[LeadStanding] = Field(description="The leads with this address, as they stand now")


@router.get("/suppressions", response_model=Page[SuppressionOut])
def list_suppressions(
    database: DatabaseDep,
    actor: ActorDep,
    channel: Channel | None = None,
    search: Annotated[str, Query(description="Part of the address")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Page[SuppressionOut]:
    """The suppression list newest first, a page at a time: pass `next_cursor` back as `cursor`."""
    before_id = None
    if cursor is not None:
        (before_id,) = decode_cursor(cursor, 1)
        if not isinstance(before_id, int):
            raise BadCursor("the cursor is not one this API gave out; start again without it")
    found = suppressions_after(
        database, actor, channel=channel, search=search, before_id=before_id, limit=limit
    )
    items = [SuppressionOut.of(view) for view in found.rows]
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if found.more and items else None)


@router.post(
    "/suppressions",
    response_model=SuppressionOut,
    status_code=201,
    responses={200: {"description": "Suppressed already: the standing entry"}},
)
def add(body: SuppressionIn, response: Response, database: DatabaseDep, actor: ActorDep) -> SuppressionOut:
    """Suppress one phone or email by hand (201), or answer the entry already there (200)."""
    view, added = suppress_address(database, actor, channel=body.channel, address=body.address)
    if not added:
        response.status_code = 200
    return SuppressionOut.of(view)


@router.delete("/suppressions/{suppression_id}", response_model=SuppressionRemovedOut)
def remove(suppression_id: int, database: DatabaseDep, actor: ActorDep) -> SuppressionRemovedOut:
    """Remove a suppression added by hand; one the recipient or the provider caused answers 409."""
    removed = remove_suppression(database, actor, suppression_id)
    return SuppressionRemovedOut(
        channel=removed.channel,
        address=removed.address,
        leads=[
            LeadStanding(lead_id=lead.lead_id, name=lead.name, opted_out=lead.opted_out_at is not None)
            for lead in removed.leads
        ],
    )
