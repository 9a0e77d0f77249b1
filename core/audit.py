"""The audit log: who did what, written in the same transaction as the change itself."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from core.analytics.period import Period
from core.models import AuditLog


def record_audit(
    session: Session,
    *,
    tenant_id: int,
    user_id: int | None,
    action: str,
    entity: str,
    entity_id: int | str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add the entry to the session; returned so that an action can name it (an undo refers to it)."""
    entry = AuditLog(
        tenant_id=tenant_id,
        user_id=user_id,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=details or {},
    )
    session.add(entry)
    return entry


def audit_conditions(
    *, user_id: int | None = None, action: str | None = None, since: date | None = None,
    until: date | None = None,
) -> list[Any]:
    """SQL conditions selecting audit entries by user, action and UTC days (both included)."""
    conditions = Period(since, until).conditions(AuditLog.created_at)
    if user_id is not None:
        conditions.append(AuditLog.user_id == user_id)
    if action:
        conditions.append(AuditLog.action == action)
    return conditions
