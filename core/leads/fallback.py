"""When a lead's phone or email bounces, its next alternate takes its place.

An import keeps the best phone and email of a contact on the lead and the others as its
alternates, best first (`Lead.alternates`). A bounce is a fact about the address, not about the
person: the next alternate of that channel that is neither suppressed nor another lead's own
becomes the lead's address, and the bounced one stays among the alternates, marked. A STOP or an
unsubscribe is the person's word, so nothing falls back for those. Callers pass the addresses
they have just suppressed as bounces, inside their transaction (the suppression list import
today; the provider's bounce and failure notices when they arrive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.models import Channel, Lead, Suppression

CHUNK = 2_000
BOUNCED = "bounced"


def _column(channel: Channel) -> Any:
    return Lead.phone if channel is Channel.sms else Lead.email


def _taken(session: Session, channel: Channel, values: set[str]) -> set[str]:
    """Of `values`, those suppressed on this channel or held by a lead as its own address."""
    if not values:
        return set()
    suppressed = session.scalars(select(Suppression.address).where(
        Suppression.channel == channel.value, Suppression.address.in_(values)))
    owned = session.scalars(select(_column(channel)).where(_column(channel).in_(values)))
    return set(suppressed) | set(owned)


def fall_back_from_bounces(
    session: Session, *, tenant_id: int, channel: Channel, bounced: Sequence[str], user_id: int | None
) -> list[int]:
    """Give each lead whose own address bounced its next usable alternate; the leads changed.

    Audited as one `leads.fall_back` entry naming the leads (no addresses: the entry outlives an
    erasure of the lead).
    """
    changed: list[int] = []
    column = _column(channel)
    wanted = sorted(set(bounced))
    for start in range(0, len(wanted), CHUNK):
        leads = session.scalars(select(Lead).where(column.in_(wanted[start : start + CHUNK]))).all()
        candidates = {
            str(a.get("value")) for lead in leads for a in lead.alternates or []
            if isinstance(a, dict) and a.get("channel") == channel.value and not a.get(BOUNCED)
        }
        taken = _taken(session, channel, candidates)
        for lead in leads:
            if _fall_back(lead, channel, taken):
                taken.add(str(getattr(lead, column.key)))
                changed.append(lead.id)
    if changed:
        session.flush()
        record_audit(session, tenant_id=tenant_id, user_id=user_id, action="leads.fall_back",
                     entity="lead", details={"channel": channel.value, "lead_ids": changed})
    return changed


def _fall_back(lead: Lead, channel: Channel, taken: set[str]) -> bool:
    alternates = [dict(a) for a in lead.alternates or [] if isinstance(a, dict)]
    for index, alternate in enumerate(alternates):
        value = str(alternate.get("value"))
        if alternate.get("channel") != channel.value or alternate.get(BOUNCED) or value in taken:
            continue
        old = lead.phone if channel is Channel.sms else lead.email
        if channel is Channel.sms:
            lead.phone = value
        else:
            lead.email = value
        del alternates[index]
        alternates.append({"channel": channel.value, "value": old, "label": "bounced", BOUNCED: True})
        lead.alternates = alternates
        return True
    return False
