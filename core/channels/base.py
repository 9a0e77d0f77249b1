"""The send interface every provider implements, and the errors that say what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.db import Database


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as the ledger recorded it, ready for a provider."""

    tenant_id: int
    campaign_id: int
    channel: str  # "sms" | "email"
    to_address: str
    body: str
    idempotency_key: str
    subject: str | None = None
    from_address: str | None = None


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str


class NotSent(Exception):
    """The provider certainly did not send the message.

    `permanent`: trying again will not help (a bad number, a refused address). `opted_out`: the
    recipient asked not to be messaged; the address goes on the suppression list.
    Any other exception from `send` means the outcome is unknown.
    """

    def __init__(
        self, reason: str, *, permanent: bool, opted_out: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.opted_out = opted_out
        self.retry_after = retry_after


class Sender(Protocol):
    """A send provider for one channel."""

    name: str  # "outbox" | "twilio" | "smtp"

    def send(self, message: OutgoingMessage, *, db: Database) -> SendReceipt:
        """Hand the message to the provider; raises NotSent, or anything else when unsure."""
        ...

    def was_sent(self, idempotency_key: str, *, tenant_id: int, db: Database) -> bool | None:
        """Whether a message with this key reached the provider: True, False, or None (cannot tell)."""
        ...
