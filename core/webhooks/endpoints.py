"""The webhook endpoints of a tenant and their delivery log: the services the Admin page, the API
and the CLI call, each with `(db, actor, ...)` and the `manage_webhooks` permission.

A secret is shown once, when the endpoint is created or its secret rotated; it is kept in the
clear because signing needs it (HMAC), and never returned by a read. A rotation keeps the previous
secret signing beside the new one for an overlap, so receivers can switch without a gap.
"""

from __future__ import annotations

import base64
import secrets as token_source
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.config import Settings
from core.db import Database
from core.errors import NotFound, ValidationError
from core.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from core.net_guard import UnsafeAddress, vetted_address
from core.permissions import Actor, Permission
from core.webhooks.delivery import allow_private_addresses
from core.webhooks.events import SUBSCRIBABLE, EventType, new_delivery, payload_of

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 255
RESOLVE_TIMEOUT_SECONDS = 5.0
MAX_PAGE = 200


class WebhookInputError(ValidationError):
    """Input refused, naming the field it is about (the API reports it per field)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EndpointView:
    id: int
    url: str
    description: str
    event_types: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    # Set while a rotated-out secret still signs beside the new one.
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class EndpointWithSecret:
    """An endpoint just created or rotated, with its secret: the only time the secret is shown."""

    endpoint: EndpointView
    secret: str


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event_id: str
    endpoint_id: int
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_response_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(token_source.token_bytes(SECRET_BYTES)).decode()


def check_url(url: str, settings: Settings) -> str:
    """The URL, trimmed, when deliveries may go to it: http(s), and in production mode a host that
    resolves only to public addresses (deliveries check again at every connection)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise WebhookInputError(f"'{url}' has a port that is not a number", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookInputError(
            f"'{url}' is not an http or https URL; give the full address, e.g. https://crm.example.com/hooks",
            field="url",
        )
    if len(url) > MAX_URL_CHARS:
        raise WebhookInputError(f"the URL is longer than {MAX_URL_CHARS} characters", field="url")
    if parts.username or parts.password:
        raise WebhookInputError(
            "put no user name or password in the URL: every delivery is signed", field="url"
        )
    if not allow_private_addresses(settings):
        try:
            vetted_address(
                parts.hostname,
                port or (443 if parts.scheme == "https" else 80),
                False,
                RESOLVE_TIMEOUT_SECONDS,
            )
        except UnsafeAddress as exc:
            raise WebhookInputError(
                f"{exc}; webhooks go to public internet addresses only", field="url"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a resolver that timed out says why
            raise WebhookInputError(f"cannot resolve {parts.hostname}: {exc}", field="url") from None
    return url


def check_event_types(event_types: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(str(t).strip() for t in event_types))
    unknown = [t for t in chosen if t not in SUBSCRIBABLE]
    if unknown:
        raise WebhookInputError(
            f"unknown event type {', '.join(repr(t) for t in unknown)}; "
            f"choose from {', '.join(SUBSCRIBABLE)}",
            field="event_types",
        )
    if not chosen:
        raise WebhookInputError("choose at least one event type", field="event_types")
    return [t for t in SUBSCRIBABLE if t in chosen]


def _description(value: str | None) -> str:
    text = " ".join((value or "").split())
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise WebhookInputError(
            f"the description is longer than {MAX_DESCRIPTION_CHARS} characters", field="description"
        )
    return text


def _view(row: WebhookEndpoint, now: datetime | None = None) -> EndpointView:
    now = now or datetime.now(UTC)
    overlap = row.previous_secret_expires_at
    return EndpointView(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=tuple(row.event_types or ()),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
        previous_secret_expires_at=overlap if row.previous_secret and overlap and overlap > now else None,
    )


def _delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        event_id=row.event_id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_response_ms=row.last_response_ms,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.pending.value else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    # The tenant session sees its own endpoints only: another tenant's id is simply not found.
    row = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return row


def list_endpoints(db: Database, actor: Actor) -> list[EndpointView]:
    actor.require(Permission.manage_webhooks)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        return [_view(row) for row in rows]


def get_endpoint(db: Database, actor: Actor, endpoint_id: int) -> EndpointView:
    actor.require(Permission.manage_webhooks)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return _view(_endpoint(session, endpoint_id))


def create_endpoint(
    db: Database,
    actor: Actor,
    *,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    enabled: bool = True,
) -> EndpointWithSecret:
    """Register an endpoint; its secret is in the answer and never shown again."""
    actor.require(Permission.manage_webhooks)
    url = check_url(url, db.settings)
    checked_types = check_event_types(event_types)
    text = _description(description)
    secret = new_secret()
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = WebhookEndpoint(
            tenant_id=actor.tenant_id,
            url=url,
            description=text,
            event_types=checked_types,
            enabled=enabled,
            secret=secret,
            created_at=now,
            updated_at=now,
            created_by_user_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        record_audit(
            session,
            tenant_id=actor.tenant_id,
            user_id=actor.user_id,
            action="webhook.create",
            entity="webhook_endpoint",
            entity_id=row.id,
            details={"url": url, "event_types": checked_types, "enabled": enabled},
        )
        return EndpointWithSecret(_view(row, now), secret)


def update_endpoint(
    db: Database,
    actor: Actor,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> EndpointView:
    """Change what is given (None: unchanged). Disabling stops new events and pending deliveries."""
    actor.require(Permission.manage_webhooks)
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = check_url(url, db.settings)
    if event_types is not None:
        changes["event_types"] = check_event_types(event_types)
    if description is not None:
        changes["description"] = _description(description)
    if enabled is not None:
        changes["enabled"] = bool(enabled)
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _endpoint(session, endpoint_id)
        changed = {key: value for key, value in changes.items() if getattr(row, key) != value}
        if changed:
            for key, value in changed.items():
                setattr(row, key, value)
            row.updated_at = now
            record_audit(
                session,
                tenant_id=actor.tenant_id,
                user_id=actor.user_id,
                action="webhook.update",
                entity="webhook_endpoint",
                entity_id=row.id,
                details=changed,
            )
        return _view(row, now)


def delete_endpoint(db: Database, actor: Actor, endpoint_id: int) -> None:
    """Remove the endpoint and its delivery log."""
    actor.require(Permission.manage_webhooks)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _endpoint(session, endpoint_id)
        record_audit(
            session,
            tenant_id=actor.tenant_id,
            user_id=actor.user_id,
            action="webhook.delete",
            entity="webhook_endpoint",
            entity_id=row.id,
            details={"url": row.url},
        )
        session.delete(row)


def rotate_secret(
    db: Database,
    actor: Actor,
    endpoint_id: int,
    *,
    overlap_hours: float | None = None,
    now: datetime | None = None,
) -> EndpointWithSecret:
    """A new secret signs from now on; the old one signs beside it for `overlap_hours` (the
    setting's default), then stops. Returns the new secret, shown this once."""
    actor.require(Permission.manage_webhooks)
    hours = db.settings.webhook_secret_overlap_hours if overlap_hours is None else overlap_hours
    if not 0 <= hours <= 24 * 30:
        raise WebhookInputError("the overlap is between 0 and 720 hours", field="overlap_hours")
    now = now or datetime.now(UTC)
    secret = new_secret()
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _endpoint(session, endpoint_id)
        row.previous_secret = row.secret if hours > 0 else None
        row.previous_secret_expires_at = now + timedelta(hours=hours) if hours > 0 else None
        row.secret = secret
        row.updated_at = now
        record_audit(
            session,
            tenant_id=actor.tenant_id,
            user_id=actor.user_id,
            action="webhook.rotate_secret",
            entity="webhook_endpoint",
            entity_id=row.id,
            details={"overlap_hours": hours},
        )
        return EndpointWithSecret(_view(row, now), secret)


def send_test_event(db: Database, actor: Actor, endpoint_id: int) -> DeliveryView:
    """Queue a `webhook.test` delivery for this endpoint (whatever it subscribed to); the runner sends it."""
    actor.require(Permission.manage_webhooks)
    now = datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _endpoint(session, endpoint_id)
        data = {
            "endpoint_id": row.id,
            "message": "a test event sent from Leadflow",
            "requested_by": actor.username or None,
        }
        delivery = new_delivery(
            tenant_id=actor.tenant_id,
            endpoint_id=row.id,
            event_type=EventType.webhook_test.value,
            payload=payload_of(EventType.webhook_test.value, data, now),
            now=now,
        )
        session.add(delivery)
        session.flush()
        return _delivery_view(delivery)


def list_deliveries(
    db: Database,
    actor: Actor,
    *,
    endpoint_id: int | None = None,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = 50,
    after: tuple[datetime, int] | None = None,
) -> list[DeliveryView]:
    """The delivery log, newest first; `after` is the (created_at, id) of the last row of the previous
    page (keyset pagination: stable while deliveries are added)."""
    actor.require(Permission.manage_webhooks)
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise WebhookInputError(
            f"unknown status '{status}'; choose from {', '.join(s.value for s in DeliveryStatus)}",
            field="status",
        )
    if event_type is not None and event_type not in {t.value for t in EventType}:
        raise WebhookInputError(f"unknown event type '{event_type}'", field="event_type")
    limit = max(1, min(limit, MAX_PAGE))
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        if endpoint_id is not None:
            _endpoint(session, endpoint_id)
        query = select(WebhookDelivery)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        if event_type is not None:
            query = query.where(WebhookDelivery.event_type == event_type)
        if after is not None:
            query = query.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(*after))
        rows = session.scalars(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
        ).all()
        return [_delivery_view(row) for row in rows]


def delivery_counts(db: Database, actor: Actor) -> dict[str, int]:
    """How many deliveries of the tenant are in each status (the Admin section's summary)."""
    actor.require(Permission.manage_webhooks)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            select(WebhookDelivery.status, func.count(WebhookDelivery.id)).group_by(WebhookDelivery.status)
        ).all()
    return {status: int(count) for status, count in rows}
