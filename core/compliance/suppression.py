"""Suppression checks at compose and send time, read from the tenant's suppression list."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import Suppression, SuppressionReason


def suppression_reason(session: Session, *, channel: str, address: str | None) -> str | None:
    """The reason the address is suppressed on this channel ("stop", "bounce", ...), or None."""
    if not address:
        return None
    return session.scalar(
        select(Suppression.reason)
        .where(Suppression.channel == channel, Suppression.address == address)
        .limit(1)
    )


def suppress_address(
    session: Session,
    *,
    tenant_id: int,
    channel: str,
    address: str,
    reason: SuppressionReason,
    source: str,
) -> None:
    """Add the address to the tenant's suppression list unless it is already there."""
    if suppression_reason(session, channel=channel, address=address) is not None:
        return
    try:
        with session.begin_nested():
            session.add(
                Suppression(
                    tenant_id=tenant_id, channel=channel, address=address, reason=reason.value, source=source
                )
            )
    except IntegrityError:
        pass  # another worker suppressed it at the same moment: the outcome is the same
