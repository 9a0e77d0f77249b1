"""Contact caps: at most so many messages to one lead per rolling day and week, all campaigns together.

Every ledger row that may have reached the lead counts (sending, sent, delivered, unknown: a
row left `sending` by a provider call in flight is a message the lead may get); failed rows do
not. A lead over a cap is deferred to when the oldest counted message leaves the window, never
failed. The count is authoritative only inside the transaction that writes the ledger row, with
the lead locked (`lock_lead`): two workers sending to one lead at once then count one after the
other (core.pipeline.ledger.write_ledger_row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, not_, select
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.models import Lead, Message, MessageStatus
from core.text import plural

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MAX_CAP = 1000
COUNTED_STATUSES = (
    MessageStatus.sending.value,
    MessageStatus.sent.value,
    MessageStatus.delivered.value,
    MessageStatus.unknown.value,
)


@dataclass(frozen=True)
class ContactCaps:
    """The tenant's caps per lead; None: no cap over that window."""

    per_day: int | None = None
    per_week: int | None = None

    @property
    def active(self) -> bool:
        return self.per_day is not None or self.per_week is not None

    def windows(self) -> list[tuple[int, timedelta, str]]:
        return [
            (cap, length, name)
            for cap, length, name in ((self.per_day, DAY, "day"), (self.per_week, WEEK, "week"))
            if cap is not None
        ]

    def describe(self) -> str:
        """In words: "at most 1 message per lead a day and 3 a week (all campaigns together)"."""
        windows = self.windows()
        if not windows:
            return "no cap on messages per lead"
        (cap, _, name), *others = windows
        parts = [f"{plural(cap, 'message')} per lead a {name}"] + [f"{c} a {n}" for c, _, n in others]
        return f"at most {' and '.join(parts)} (all campaigns together)"


def check_cap(value: object, label: str) -> int | None:
    """A cap as stored: a whole number from 1 to MAX_CAP, or None (blank: no cap)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        cap = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{label} '{value}' is not a whole number of messages") from None
    if not 1 <= cap <= MAX_CAP:
        raise ValidationError(f"{label} must be between 1 and {MAX_CAP} messages (blank: no cap)")
    return cap


def cap_allows_at(caps: ContactCaps, sent_times: Sequence[datetime], now: datetime) -> datetime:
    """`now` when one more message keeps every cap, else when it will (the oldest ages out).

    `sent_times` are the lead's counted messages over the last week (any order).
    """
    allowed = now
    times = sorted(sent_times)
    for cap, length, _ in caps.windows():
        recent = [t for t in times if t > now - length]
        if len(recent) >= cap:
            # Once the (len - cap + 1) oldest have left the window, cap - 1 remain.
            allowed = max(allowed, recent[len(recent) - cap] + length)
    return allowed


def capping_window(caps: ContactCaps, sent_times: Sequence[datetime], now: datetime) -> str:
    """Which cap holds the lead back now, in words ("1 message per lead a day")."""
    for cap, length, name in caps.windows():
        if sum(1 for t in sent_times if t > now - length) >= cap:
            return f"{plural(cap, 'message')} per lead a {name}"
    return caps.describe()


def lock_lead(session: Session, lead_id: int, *, dialect: str) -> None:
    """Hold the lead's row until the transaction ends, so sends to it count one at a time.

    FOR NO KEY UPDATE: senders wait for each other, while rows that only refer to the lead (a
    new enrolment, a ledger row) are not held up. SQLite needs nothing: a write transaction
    holds the database's write lock from its BEGIN.
    """
    if dialect == "postgresql":
        session.execute(select(Lead.id).where(Lead.id == lead_id).with_for_update(key_share=True))


@dataclass(frozen=True)
class CapHold:
    """A lead over a cap: when one more message keeps every cap, and which cap holds it (words)."""

    until: datetime
    cap: str


def cap_hold(
    session: Session,
    caps: ContactCaps,
    *,
    lead_id: int,
    now: datetime,
    excluding: tuple[int, int] | None = None,
) -> CapHold | None:
    """None when one more message to the lead keeps every cap; else when it will, and which cap."""
    if not caps.active:
        return None
    times = recent_send_times(session, lead_id=lead_id, now=now, excluding=excluding)
    until = cap_allows_at(caps, times, now)
    return CapHold(until, capping_window(caps, times, now)) if until > now else None


def recent_send_times(
    session: Session, *, lead_id: int, now: datetime, excluding: tuple[int, int] | None = None
) -> list[datetime]:
    """When the lead's counted messages of the last week were written, oldest first.

    `excluding` (campaign lead id, step) leaves out the row of the send being decided: a step
    already in the ledger is the ledger's own business, not the cap's.
    """
    query = select(Message.created_at).where(
        Message.lead_id == lead_id,
        Message.created_at > now - WEEK,
        Message.status.in_(COUNTED_STATUSES),
    )
    if excluding is not None:
        query = query.where(
            not_(and_(Message.campaign_lead_id == excluding[0], Message.step == excluding[1]))
        )
    return list(session.scalars(query.order_by(Message.created_at)))
