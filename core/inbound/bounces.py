"""Email bounces applied to a tenant: the address suppressed, the email undelivered, the lead's
next address in its place.

A permanent failure (Action: failed, Status 5.x.x) makes a `bounce` suppression with the remote
server's words as its source, marks the ledger row of the email that bounced `undelivered`, and
lets the lead fall back to its next alternate email (`core.leads.fallback`). A delay (4.x.x) is
written on the ledger row and suppresses nothing: the server is still trying. Applying the same
report twice changes nothing the second time. A plain-text bounce (no RFC 3464 report) counts
only for an email in the ledger, and only for the address it was sent to.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.inbound.dsn import DeliveryReport, RecipientStatus
from core.leads.fallback import fall_back_from_bounces
from core.models import Channel, Message, MessageStatus, SuppressionReason
from core.suppressions import suppress_in
from core.webhooks.events import EventType, emit, message_data

AUDIT_ACTION = "email.bounce"
DELAYED_PREFIX = "delayed: "
# A ledger row in these states has an outcome a bounce may not overwrite: still being sent (the
# pipeline writes it next) or already marked by an earlier report.
_KEEP_STATUSES = (MessageStatus.sending.value, MessageStatus.undelivered.value)


@dataclass(frozen=True)
class BounceApplied:
    suppressed: tuple[str, ...]  # addresses suppressed by this report (empty on a repeat)
    delayed: tuple[str, ...]
    message_id: int | None  # the ledger row of the email that bounced, when found
    message_changed: bool
    leads_fallen_back: tuple[int, ...]

    @property
    def changed(self) -> bool:
        return bool(self.suppressed or self.message_changed or self.leads_fallen_back)


def bounced_message(session: Session, original_message_id: str | None) -> Message | None:
    """The tenant's email ledger row whose Message-ID the report returned."""
    if not original_message_id:
        return None
    return session.scalar(
        select(Message).where(Message.provider_message_id == original_message_id,
                              Message.channel == Channel.email.value).limit(1)
    )


def apply_delivery_report(session: Session, *, tenant_id: int, report: DeliveryReport) -> BounceApplied:
    """Apply the report inside the caller's tenant transaction."""
    message = bounced_message(session, report.original_message_id)
    recipients = list(report.recipients)
    if not report.standard:
        # A plain-text bounce is read by rules of thumb: it counts only for an email Leadflow
        # sent, and only for the address that email went to.
        recipients = [r for r in recipients if message is not None and r.address == message.to_address]
    permanent = [r for r in recipients if r.permanent]
    delayed = [r for r in recipients if r.delayed]
    suppressed: list[str] = []
    for recipient in permanent:
        if suppress_in(session, tenant_id, Channel.email, [recipient.address], SuppressionReason.bounce,
                       f"bounce {recipient.status}: {recipient.diagnostic}"):
            suppressed.append(recipient.address)
    changed = False
    if message is not None:
        changed = _mark(message, permanent, delayed)
        if changed and message.status == MessageStatus.undelivered.value:
            session.flush()
            emit(session, tenant_id, EventType.message_failed, message_data(session, message.id))
    fallen = fall_back_from_bounces(session, tenant_id=tenant_id, channel=Channel.email,
                                    bounced=suppressed, user_id=None) if suppressed else []
    applied = BounceApplied(tuple(suppressed), tuple(r.address for r in delayed),
                            message.id if message is not None else None, changed, tuple(fallen))
    if suppressed or (changed and permanent):
        record_audit(session, tenant_id=tenant_id, user_id=None, action=AUDIT_ACTION, entity="message",
                     entity_id=applied.message_id,
                     details={"statuses": sorted({r.status for r in permanent}),
                              "suppressions": len(suppressed), "leads_fallen_back": list(fallen)})
    return applied


def _mark(message: Message, permanent: list[RecipientStatus], delayed: list[RecipientStatus]) -> bool:
    """Write the outcome on the ledger row; whether it changed."""
    if message.status in _KEEP_STATUSES:
        return False
    own = [r for r in permanent if r.address == message.to_address] or permanent
    if own:
        message.status = MessageStatus.undelivered.value
        message.error = own[0].diagnostic
        return True
    waiting = [r for r in delayed if r.address == message.to_address] or delayed
    if waiting and message.status != MessageStatus.delivered.value:
        note = f"{DELAYED_PREFIX}{waiting[0].status} {waiting[0].diagnostic}"[:1000]
        if message.error != note:
            message.error = note
            return True
    return False
