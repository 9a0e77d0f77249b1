"""One-click unsubscribe (RFC 8058): signed per-recipient tokens, their URL, and the unsubscribe.

Every email carries `List-Unsubscribe: <https://PUBLIC/api/unsubscribe/TOKEN>`; the token names
the tenant, the lead, the channel and the address, and is signed with HMAC-SHA256 under a key
derived from `LEADFLOW_UNSUBSCRIBE_SECRET` (or the cookie key when that is unset), so it cannot be
made for another lead or tenant, and a token changed in any character is refused. Tokens do not
expire: an unsubscribe link must work for as long as the mail can be read.

A POST with a valid token opts the lead out and suppresses the address, once: a replay answers the
same and changes nothing, so a mail client retrying its request is harmless. A GET only shows what
a POST would do: mail scanners follow links, and a link alone must not unsubscribe anyone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.compliance.suppression import suppression_reason
from core.config import Settings
from core.db import Database
from core.errors import NotFound
from core.models import Channel, Lead, SuppressionReason, Tenant
from core.replies import opt_out_lead_in

PATH = "/api/unsubscribe/{token}"
AUDIT_ACTION = "unsubscribe.one_click"
# Domain separation: the cookie key may sign these too, but never the same bytes as a cookie.
_KEY_LABEL = b"leadflow one-click unsubscribe token v1"
_TOKEN = re.compile(r"^(\d{1,18})\.(\d{1,18})\.(email|sms)\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$")
NO_LEAD = 0  # a message to no lead (a sender verification code): the address alone is suppressed


class InvalidToken(NotFound):
    """The token is not one Leadflow signed: forged, altered, or for another deployment."""

    def __init__(self) -> None:
        super().__init__("this unsubscribe link is not valid; nothing was changed")


@dataclass(frozen=True)
class UnsubscribeToken:
    tenant_id: int
    lead_id: int | None
    channel: str
    address: str


@dataclass(frozen=True)
class UnsubscribePreview:
    """What the confirmation page shows before the person presses the button."""

    tenant_name: str
    masked_address: str
    already_unsubscribed: bool


@dataclass(frozen=True)
class Unsubscribed:
    tenant_name: str
    masked_address: str
    changed: bool  # False: a replay, or the address was unsubscribed already


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: Settings) -> bytes:
    secret = (
        settings.unsubscribe_secret.get_secret_value()
        if settings.unsubscribe_secret
        else settings.require_cookie_key()
    )
    return hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _signed(key: bytes, tenant_id: int, lead_id: int, channel: str, address: str) -> str:
    payload = f"{tenant_id}.{lead_id}.{channel}.{_b64(address.encode())}"
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


class TokenSigner:
    """Signs and reads tokens with one derived key (the sender builds it once, at start)."""

    def __init__(self, settings: Settings) -> None:
        self._key = _key(settings)

    def sign(self, *, tenant_id: int, lead_id: int | None, channel: str, address: str) -> str:
        return _signed(self._key, tenant_id, lead_id or NO_LEAD, Channel(channel).value, address)

    def read(self, token: str) -> UnsubscribeToken:
        """The token's recipient; `InvalidToken` unless this deployment signed exactly this text."""
        match = _TOKEN.match(token)
        if match is None:
            raise InvalidToken()
        tenant, lead, channel, address, _ = match.groups()
        try:
            decoded = _unb64(address).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidToken() from None
        # The token is signed anew from what it says and compared whole: a changed character
        # anywhere (even a base64 padding bit, or a leading zero) makes a different text.
        expected = _signed(self._key, int(tenant), int(lead), channel, decoded)
        if not hmac.compare_digest(expected.encode(), token.encode()):
            raise InvalidToken()
        return UnsubscribeToken(int(tenant), int(lead) or None, channel, decoded)


def unsubscribe_url_template(settings: Settings) -> str | None:
    """The one-click URL with "{token}" in it: the configured one, else the service's own path
    under the public URL; None when neither is set (List-Unsubscribe then carries mailto only)."""
    if settings.email_unsubscribe_url:
        return settings.email_unsubscribe_url
    if settings.public_url:
        return settings.public_url.rstrip("/") + PATH
    return None


def mask_address(address: str) -> str:
    """`a***@example.com`: enough for the person to recognise, not a list of addresses for a scraper."""
    local, at, domain = address.partition("@")
    if not at:
        return address[:2] + "***" + address[-2:] if len(address) > 4 else "***"
    return f"{local[:1]}***@{domain}"


def _tenant_name(db: Database, tenant_id: int) -> str:
    with db.session(system=True, read_only=True) as session:
        name = session.scalar(select(Tenant.name).where(Tenant.id == tenant_id))
    if name is None:
        raise InvalidToken()
    return name


def _lead(session: Session, token: UnsubscribeToken) -> Lead | None:
    """The token's lead in its tenant; `InvalidToken` when a lead is named and is not there."""
    if token.lead_id is None:
        return None
    lead = session.scalar(select(Lead).where(Lead.id == token.lead_id))
    if lead is None:
        raise InvalidToken()
    return lead


def preview_unsubscribe(db: Database, token: str) -> UnsubscribePreview:
    """What the GET page shows: whose emails, to which address, and whether it is done already."""
    recipient = TokenSigner(db.settings).read(token)
    name = _tenant_name(db, recipient.tenant_id)
    with db.session(tenant_id=recipient.tenant_id, read_only=True) as session:
        lead = _lead(session, recipient)
        done = suppression_reason(session, channel=recipient.channel, address=recipient.address) is not None
        done = done and (lead is None or lead.opted_out_at is not None)
    return UnsubscribePreview(name, mask_address(recipient.address), done)


def unsubscribe(db: Database, token: str, *, now: datetime | None = None) -> Unsubscribed:
    """Opt the token's lead out and suppress its address; a replay changes nothing and is not
    audited again. `InvalidToken` (a NotFound) for a token this deployment did not sign."""
    recipient = TokenSigner(db.settings).read(token)
    name = _tenant_name(db, recipient.tenant_id)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=recipient.tenant_id) as session, session.begin():
        lead = _lead(session, recipient)
        outcome = opt_out_lead_in(
            session, tenant_id=recipient.tenant_id, lead=lead, channel=recipient.channel,
            address=recipient.address, reason=SuppressionReason.unsubscribe,
            source="one-click unsubscribe", now=now,
        )
        if outcome.changed:
            record_audit(session, tenant_id=recipient.tenant_id, user_id=None, action=AUDIT_ACTION,
                         entity="lead", entity_id=recipient.lead_id,
                         details={"channel": recipient.channel, "opted_out": outcome.opted_out,
                                  "suppressed": outcome.suppressed,
                                  "sequences_stopped": outcome.sequences_stopped})
    return Unsubscribed(name, mask_address(recipient.address), outcome.changed)
