"""An inbound email read for what Leadflow needs: who wrote, to whom, which email it answers, and
the new text of the reply (the quoted original below it is cut off, so that the footer of our own
email, "reply 'unsubscribe'", is not read as the lead's words)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from bs4 import BeautifulSoup

from core.inbound.dsn import bare_message_id, parse_email
from core.leads.normalise import normalise_email

MAX_BODY_CHARS = 20_000
MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit
# Where a reply's quoted original starts: "On <date>, <name> wrote:", Outlook's header block or
# separator, and the "-- Original Message --" of many clients.
_QUOTE_START = re.compile(
    r"^(On\b.{0,300}\bwrote:\s*$"
    r"|Le\b.{0,300}\ba écrit\s*:\s*$"
    r"|Am\b.{0,300}\bschrieb\b.{0,100}:\s*$"
    r"|-{2,}\s*Original Message\s*-{2,}\s*$"
    r"|_{10,}\s*$"
    r"|From:\s.+\n(Sent|Date):\s)",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class InboundEmail:
    message_id: str  # the email's own Message-ID without <>, or a digest of its bytes
    from_address: str  # normalised, "" when it has none that parses
    to_addresses: tuple[str, ...]  # To, then Cc, then Delivered-To, normalised
    subject: str | None
    body: str
    answered_ids: tuple[str, ...]  # In-Reply-To, then References newest first, without <>
    received_at: datetime


def read_inbound_email(
    raw: bytes, *, now: datetime | None = None, parsed: EmailMessage | None = None
) -> InboundEmail:
    """The email in `raw` (RFC 5322 bytes; `parsed` when the caller has parsed them already);
    never raises on a malformed message. It was received when its Date says, unless that is
    later than `now` (a sender's clock ahead)."""
    email = parsed if parsed is not None else parse_email(raw)
    now = now or datetime.now(UTC)
    sent = _date(email)
    subject = " ".join(str(email.get("Subject", "")).split())[:MAX_SUBJECT_CHARS] or None
    return InboundEmail(
        message_id=bare_message_id(email.get("Message-ID")) or f"sha256:{hashlib.sha256(raw).hexdigest()}",
        from_address=_first_address(email, "From", "Reply-To"),
        to_addresses=recipient_addresses(email),
        subject=subject,
        body=reply_text(_body_text(email)),
        answered_ids=answered_message_ids(email),
        received_at=min(sent, now) if sent else now,
    )


def answered_message_ids(email: EmailMessage) -> tuple[str, ...]:
    """The ids of the emails this one answers, best first: In-Reply-To, then References from the
    newest (the last) back to the first."""
    ids: list[str] = []
    for header in ("In-Reply-To", "References"):
        found = re.findall(r"<([^<>\s]+)>", " ".join(str(v) for v in email.get_all(header, [])))
        for message_id in found if header == "In-Reply-To" else reversed(found):
            if message_id not in ids:
                ids.append(message_id[:255])
    return tuple(ids)


def reply_text(text: str) -> str:
    """The new part of a reply: above the quoted original and without `>` lines."""
    match = _QUOTE_START.search(text)
    head = text[: match.start()] if match else text
    lines = [line for line in head.splitlines() if not line.lstrip().startswith(">")]
    new = "\n".join(lines).strip()
    return (new or text.strip())[:MAX_BODY_CHARS]


def _body_text(email: EmailMessage) -> str:
    part = email.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return BeautifulSoup(content, "html.parser").get_text("\n")
    return content


def recipient_addresses(email: EmailMessage) -> tuple[str, ...]:
    """Whom the email was written to, normalised: To, then Cc, Delivered-To, X-Original-To."""
    found: list[str] = []
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        for _, raw in getaddresses([str(v) for v in email.get_all(header, [])]):
            address, _ = normalise_email(raw)
            if address and address not in found:
                found.append(address)
    return tuple(found)


def _first_address(email: EmailMessage, *headers: str) -> str:
    for header in headers:
        value = email.get(header)
        addresses = getattr(value, "addresses", ()) if value is not None else ()
        for item in addresses:
            if isinstance(item, Address) and item.addr_spec:
                address, _ = normalise_email(item.addr_spec)
                if address:
                    return address
    return ""


def _date(email: EmailMessage) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(str(email.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
