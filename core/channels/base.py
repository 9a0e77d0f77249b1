"""The send interface every provider implements, and the errors that say what happened."""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

REDACTED = "[redacted]"
# Twilio's account-level ids (account, API key, messaging service, number, app, credential, key
# set, connect app): 2 letters and 32 hex digits. Message ids (SM, MM) are the lead's own receipt.
_TWILIO_ACCOUNT_IDS = re.compile(
    r"(?<![0-9a-z])(?:AC|SK|MG|PN|AP|CR|KS|CN)[0-9a-f]{32}(?![0-9a-z])", re.IGNORECASE
)
_CREDENTIAL_SHAPES = (
    # OpenAI-style keys, whole or as OpenAI's errors mask them ("sk-proj-****1234"), and its
    # organisation and project ids.
    re.compile(r"(?<![0-9A-Za-z])sk-[A-Za-z0-9_\-*.]{2,}"),
    re.compile(r"(?<![0-9A-Za-z])(?:org|proj)[-_][A-Za-z0-9]{4,}"),
    re.compile(r"(?<![0-9A-Z])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),  # AWS access keys (SES)
    re.compile(r"(?<=://)[^/\s@]+(?=@)"),  # credentials written into a URL
    re.compile(r"(?<=\bBasic )[A-Za-z0-9+/=]{8,}|(?<=\bBearer )[A-Za-z0-9+/=._\-]{8,}", re.IGNORECASE),
)
_MIN_SECRET_LENGTH = 4
# The keys under which a stored outcome carries text for people: lead errors and reasons, event
# messages, ledger errors, suppression sources, model-call errors.
MESSAGE_KEYS = frozenset({"error", "status_reason", "message", "reason", "source"})
_secrets_lock = threading.Lock()
_known_secrets: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_T = TypeVar("_T")


def remember_secrets(*values: str | None) -> None:
    """Add configured credentials (account ids, tokens, logins) to what `redact_secrets` removes.

    The senders call it with their settings, so an error that echoes a login in any shape (as
    typed, in another case, base64-encoded as SMTP AUTH sends it) is redacted wherever it is stored.
    """
    global _known_pattern
    fresh = set()
    for value in values:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            fresh.update({value, base64.b64encode(value.encode()).decode()})
    with _secrets_lock:
        if fresh <= _known_secrets:
            return
        _known_secrets.update(fresh)
        # Longest first, so a secret that contains another is removed whole.
        alternatives = "|".join(map(re.escape, sorted(_known_secrets, key=len, reverse=True)))
        # Whole tokens only: a login "mail" is redacted, the word "email" is not.
        _known_pattern = re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)


def redact_secrets(text: str) -> str:
    """`text` without provider account ids, API keys, credentials or any remembered secret."""
    if not text:
        return text
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _TWILIO_ACCOUNT_IDS.sub(REDACTED, text)
    for shape in _CREDENTIAL_SHAPES:
        text = shape.sub(REDACTED, text)
    return text


def redact_messages_in(value: _T) -> _T:
    """`value` with `redact_secrets` applied to the texts people read inside it.

    Walks dicts, lists and dataclasses and rewrites only the strings under a key or field named
    for a message (`MESSAGE_KEYS`): drafts, addresses and lease owners are left exactly as they are.
    """
    return _redact_walk(value, under_message_key=False)


def _redact_walk(value: _T, *, under_message_key: bool) -> _T:
    if isinstance(value, str):
        return redact_secrets(value) if under_message_key else value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {  # type: ignore[return-value]
            key: _redact_walk(item, under_message_key=key in MESSAGE_KEYS) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_walk(item, under_message_key=under_message_key) for item in value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes: dict[str, Any] = {
            f.name: _redact_walk(getattr(value, f.name), under_message_key=f.name in MESSAGE_KEYS)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    return value


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as the ledger recorded it, ready for a provider."""

    tenant_id: int
    campaign_id: int | None  # None: not a campaign's (a sender verification code)
    channel: str  # "sms" | "email"
    to_address: str
    body: str
    idempotency_key: str
    subject: str | None = None
    from_address: str | None = None
    lead_id: int | None = None  # whose one-click unsubscribe link the email carries


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str


class NotSent(Exception):
    """The provider certainly did not send the message.

    `permanent`: trying again will not help (a bad number, a refused address). `opted_out`: the
    recipient asked not to be messaged; the address goes on the suppression list.
    Any other exception from `send` means the outcome is unknown. The reason is shown to tenant
    users: it never carries a provider account id, token or login (see `redact_secrets`).
    """

    def __init__(
        self, reason: str, *, permanent: bool, opted_out: bool = False, retry_after: float | None = None
    ) -> None:
        reason = redact_secrets(reason)
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.opted_out = opted_out
        self.retry_after = retry_after


class ProviderCallFailed(Exception):
    """The provider call failed in a way that may or may not have sent the message.

    Raised instead of the provider's own exception, whose text can carry the account id (Twilio
    puts it in every request URI); the message is redacted and safe to show.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        reason = redact_secrets(reason)
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Sender(Protocol):
    """A send provider for one channel; whatever it needs (a client, a database) it is given
    when it is built, so every provider is called the same way."""

    name: str  # "outbox" | "twilio" | "smtp"

    def send(self, message: OutgoingMessage) -> SendReceipt:
        """Hand the message to the provider; raises NotSent, or anything else when unsure."""
        ...

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        """Whether a message with this key reached the provider: True, False, or None (cannot tell)."""
        ...
