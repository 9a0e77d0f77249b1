"""Outgoing webhook endpoints (admins): register, change, rotate the secret, test, read the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import DatabaseDep
from api.v1.cursors import BadCursor, decode_cursor, encode_cursor
from api.v1.deps import ActorDep
from api.v1.etags import with_etag
from api.v1.schemas import Page, UtcDateTime
from core.webhooks import endpoints as service
from core.webhooks.events import SUBSCRIBABLE

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

EVENT_TYPES_DOC = "Event types to receive: " + ", ".join(SUBSCRIBABLE)


class EndpointIn(BaseModel):
    url: str = Field(
        description="The https URL Leadflow POSTs events to", examples=["https://crm.example.com/hooks"]
    )
    event_types: list[str] = Field(description=EVENT_TYPES_DOC, examples=[["message.sent", "reply.received"]])
    description: str = Field(default="", max_length=255)
    enabled: bool = True


class EndpointPatch(BaseModel):
    url: str | None = None
    event_types: list[str] | None = Field(default=None, description=EVENT_TYPES_DOC)
    description: str | None = Field(default=None, max_length=255)
    enabled: bool | None = None


class RotateIn(BaseModel):
    overlap_hours: float | None = Field(
        default=None,
        ge=0,
        le=720,
        description="How long the old secret keeps signing beside the new one (default: the installation's)",
    )


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime
    previous_secret_expires_at: UtcDateTime | None = Field(
        description="While set, the rotated-out secret still signs beside the current one"
    )

    @classmethod
    def of(cls, view: service.EndpointView) -> EndpointOut:
        return cls(
            id=view.id,
            url=view.url,
            description=view.description,
            event_types=list(view.event_types),
            enabled=view.enabled,
            created_at=view.created_at,
            updated_at=view.updated_at,
            previous_secret_expires_at=view.previous_secret_expires_at,
        )


class EndpointWithSecretOut(EndpointOut):
    secret: str = Field(description="The signing secret (Standard Webhooks, whsec_...): shown this once")

    @classmethod
    def with_secret(cls, created: service.EndpointWithSecret) -> EndpointWithSecretOut:
        return cls(**EndpointOut.of(created.endpoint).model_dump(), secret=created.secret)


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="The webhook-id header: the same on every attempt")
    endpoint_id: int
    event_type: str
    status: str = Field(description="pending, sending, delivered or failed")
    attempts: int
    last_status_code: int | None
    last_response_ms: int | None
    last_error: str | None
    next_attempt_at: UtcDateTime | None
    created_at: UtcDateTime
    delivered_at: UtcDateTime | None

    @classmethod
    def of(cls, view: service.DeliveryView) -> DeliveryOut:
        return cls(**view.__dict__)


@router.get("/endpoints", response_model=Page[EndpointOut])
def list_endpoints(actor: ActorDep, db: DatabaseDep) -> Page[EndpointOut]:
    return Page[EndpointOut](items=[EndpointOut.of(v) for v in service.list_endpoints(db, actor)])


@router.post("/endpoints", status_code=201, response_model=EndpointWithSecretOut)
def create_endpoint(body: EndpointIn, actor: ActorDep, db: DatabaseDep) -> EndpointWithSecretOut:
    created = service.create_endpoint(
        db,
        actor,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointWithSecretOut.with_secret(created)


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: int, request: Request, actor: ActorDep, db: DatabaseDep) -> Response:
    return with_etag(request, EndpointOut.of(service.get_endpoint(db, actor, endpoint_id)))


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointOut)
def update_endpoint(endpoint_id: int, body: EndpointPatch, actor: ActorDep, db: DatabaseDep) -> EndpointOut:
    return EndpointOut.of(
        service.update_endpoint(
            db,
            actor,
            endpoint_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
        )
    )


@router.delete("/endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: int, actor: ActorDep, db: DatabaseDep) -> Response:
    service.delete_endpoint(db, actor, endpoint_id)
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecretOut)
def rotate_secret(
    endpoint_id: int, actor: ActorDep, db: DatabaseDep, body: RotateIn | None = None
) -> EndpointWithSecretOut:
    overlap = body.overlap_hours if body is not None else None
    return EndpointWithSecretOut.with_secret(
        service.rotate_secret(db, actor, endpoint_id, overlap_hours=overlap)
    )


@router.post("/endpoints/{endpoint_id}/test", status_code=202, response_model=DeliveryOut)
def send_test_event(endpoint_id: int, actor: ActorDep, db: DatabaseDep) -> DeliveryOut:
    """Queue a `webhook.test` event for this endpoint; the job runner delivers it."""
    return DeliveryOut.of(service.send_test_event(db, actor, endpoint_id))


@router.get("/endpoints/{endpoint_id}/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    endpoint_id: int,
    actor: ActorDep,
    db: DatabaseDep,
    status: Annotated[str | None, Query(description="pending, sending, delivered or failed")] = None,
    event_type: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query()] = None,
) -> Page[DeliveryOut]:
    """The endpoint's deliveries, newest first."""
    after = None
    if cursor is not None:
        at, delivery_id = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(str(at)), int(delivery_id))
        except (TypeError, ValueError):
            raise BadCursor("the cursor is not one this API gave out; start again without it") from None
    rows = service.list_deliveries(
        db, actor, endpoint_id=endpoint_id, status=status, event_type=event_type, limit=limit + 1, after=after
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id) if more and rows else None
    return Page[DeliveryOut](items=[DeliveryOut.of(r) for r in rows], next_cursor=next_cursor)
