"""Delivery status notifications (RFC 3464): which recipients failed, why, and for which email.

A bounce arrives in the inbound mailbox as `multipart/report; report-type=delivery-status`
(Postfix's "Undelivered Mail Returned to Sender", Gmail's and Exchange's "Delivery Status
Notification" alike): a text part for people, a `message/delivery-status` part with one block
per recipient (`Final-Recipient`, `Action`, `Status`, `Diagnostic-Code`) and the returned message
or its headers, whose `Message-ID` is the one the SMTP channel set. The few mailers that still
send plain-text bounces (qmail's "failure notice", old Exim) are read minimally: the recipient
from the lines that name it, the status from the enhanced code or the SMTP reply in the text.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import parseaddr

from core.leads.normalise import normalise_email

MAX_DIAGNOSTIC_CHARS = 500
# Senders of the plain-text bounces read without a report part.
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|fail)|failure notice|returned mail|mail delivery failed",
    re.IGNORECASE,
)
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_REPLY = re.compile(r"(?<!\d)([45])\d\d(?=[ -])")
# qmail: "<ada@example.com>:" on a line of its own; Exim: "  ada@example.com" under "failed:",
# both followed by the remote server's words. Also any "RCPT TO:<address>" they quote.
_PLAIN_RECIPIENT = re.compile(
    r"^<([^<>\s@]+@[^<>\s@]+)>:\s*$|^\s{2,}([^<>\s@]+@[^<>\s@]+)\s*$|RCPT TO:\s*<([^<>\s@]+@[^<>\s@]+)>",
    re.IGNORECASE | re.MULTILINE,
)
_MESSAGE_ID_LINE = re.compile(r"^Message-ID:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's outcome, as the reporting server gave it."""

    address: str  # normalised (lower-case) email
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # the enhanced status code, "5.1.1"
    diagnostic: str  # the remote server's words, or the action and status when it gave none

    @property
    def permanent(self) -> bool:
        """A hard bounce: the address does not work, and asking again will not make it."""
        return self.action == "failed" and self.status.startswith("5.")

    @property
    def delayed(self) -> bool:
        """Still being tried (or failed for now): recorded, never a reason to suppress."""
        return not self.permanent and (self.action == "delayed" or self.status.startswith("4."))


@dataclass(frozen=True)
class DeliveryReport:
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str | None  # without <>: the Message-ID of the email that bounced
    standard: bool  # an RFC 3464 report (False: read from a plain-text bounce)


def parse_email(raw: bytes) -> EmailMessage:
    """The message as the stdlib reads it with today's policy (decoded headers, get_content)."""
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bare_message_id(value: object) -> str | None:
    """`<abc@host>` (or a header holding it) as `abc@host`; None when empty."""
    text = str(value or "").strip()
    found = re.search(r"<([^<>\s]+)>", text)
    bare = found.group(1) if found else text.strip("<> \t")
    return bare[:255] or None


def delivery_report(email: EmailMessage) -> DeliveryReport | None:
    """The delivery report this email carries, or None when it is not a bounce (a reply)."""
    if email.get_content_type() == "multipart/report":
        if str(email.get_param("report-type", "")).lower() != "delivery-status":
            return None  # a read receipt (disposition-notification) or another report
        return _standard_report(email)
    return _plain_bounce(email)


def _standard_report(email: EmailMessage) -> DeliveryReport:
    recipients: list[RecipientStatus] = []
    original: str | None = None
    for part in email.iter_parts():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            recipients.extend(_recipient_blocks(part))
        elif kind in ("message/rfc822", "message/global"):
            returned = part.get_payload(0) if part.is_multipart() else None
            if isinstance(returned, Message):
                original = original or bare_message_id(returned.get("Message-ID"))
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            headers = HeaderParser().parsestr(_text_of(part))
            original = original or bare_message_id(headers.get("Message-ID"))
    return DeliveryReport(tuple(recipients), original, True)


def _recipient_blocks(part: Message) -> list[RecipientStatus]:
    """Every per-recipient block of a `message/delivery-status` part (the first block is the
    per-message one, which names no recipient)."""
    payload = part.get_payload()
    blocks = [block for block in payload if isinstance(block, Message)] if isinstance(payload, list) else []
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding in ("base64", "quoted-printable"):
        # Exchange may encode the status part: the parser then read the encoded text as header
        # blocks. The part written back out is that text; decoded, it is the usual blocks.
        body = re.split(r"\r?\n\r?\n", part.as_string(), maxsplit=1)[-1]
        encoded = body.encode("ascii", errors="ignore")
        try:
            decoded = base64.b64decode(encoded) if encoding == "base64" else quopri.decodestring(encoded)
        except (binascii.Error, ValueError):
            decoded = b""  # unreadable: a report with no recipients, which changes nothing
        chunks = re.split(r"\r?\n\s*\r?\n", decoded.decode("utf-8", errors="replace"))
        blocks = [HeaderParser().parsestr(chunk.strip()) for chunk in chunks if chunk.strip()]
    found = []
    for block in blocks:
        recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
        if not recipient:
            continue
        address = _address_of(str(recipient))
        if address is None:
            continue
        action = str(block.get("Action", "")).strip().lower()
        status = _status_of(str(block.get("Status", "")), action)
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        found.append(RecipientStatus(address, action, status, _diagnostic(diagnostic, action, status)))
    return found


def _plain_bounce(email: EmailMessage) -> DeliveryReport | None:
    sender = parseaddr(str(email.get("From", "")))[1].lower()
    if not (sender.split("@")[0] in _BOUNCE_SENDERS or _BOUNCE_SUBJECT.search(str(email.get("Subject", "")))):
        return None
    body = _plain_body(email)
    if body is None:
        return None
    notice, _, returned = _split_returned(body)
    enhanced = _ENHANCED_STATUS.search(notice)
    reply = _SMTP_REPLY.search(notice)
    if enhanced:
        status = ".".join(enhanced.groups())
    elif reply:
        status = f"{reply.group(1)}.0.0"
    else:
        return None
    action = "failed" if status.startswith("5.") else "delayed"
    addresses = []
    for match in _PLAIN_RECIPIENT.finditer(notice):
        address = _address_of(next(g for g in match.groups() if g))
        if address and address != sender and address not in addresses:
            addresses.append(address)
    if not addresses:
        return None
    words = _diagnostic(_reason_line(notice, enhanced or reply), action, status)
    original = _original_id(email, returned)
    recipients = tuple(RecipientStatus(a, action, status, words) for a in addresses)
    return DeliveryReport(recipients, original, False)


def _plain_body(email: EmailMessage) -> str | None:
    part = email.get_body(preferencelist=("plain",))
    return _text_of(part) if part is not None else None


def _split_returned(body: str) -> tuple[str, str, str]:
    """The notice and the returned message below it (qmail and Exim quote it after a marker)."""
    marker = re.search(
        r"^-+ ?(Below this line is a copy of the message|This is a copy of the message|Original message).*$",
        body, re.IGNORECASE | re.MULTILINE,
    )
    if marker is None:
        return body, "", ""
    return body[: marker.start()], marker.group(0), body[marker.end():]


def _original_id(email: EmailMessage, returned: str) -> str | None:
    for part in email.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return bare_message_id(inner.get("Message-ID"))
    found = _MESSAGE_ID_LINE.search(returned)
    return found.group(1)[:255] if found else None


def _reason_line(notice: str, match: re.Match[str] | None) -> str:
    if match is None:
        return ""
    start = notice.rfind("\n", 0, match.start()) + 1
    end = notice.find("\n", match.end())
    return " ".join(notice[start: end if end >= 0 else None].split())


def _address_of(value: str) -> str | None:
    """`rfc822; Ada@Example.com` (or a bare address) as the import stores emails."""
    _, _, address = value.rpartition(";")
    normalised, _ = normalise_email(address.strip().strip("<>"))
    return normalised


def _status_of(value: str, action: str) -> str:
    found = _ENHANCED_STATUS.search(value)
    if found:
        return ".".join(found.groups())
    # A report without a usable status: the action says which class it is.
    return "5.0.0" if action == "failed" else "4.0.0"


def _diagnostic(words: str, action: str, status: str) -> str:
    text = words.strip()
    if text.lower().startswith(("smtp;", "x-postfix;", "x-unix;")):
        text = text.partition(";")[2].strip()
    return (text or f"{action or 'failed'} ({status})")[:MAX_DIAGNOSTIC_CHARS]


def _text_of(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=True)
    except (KeyError, LookupError, ValueError):
        content = part.get_payload(decode=True)
    if isinstance(content, bytes):
        return content.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else str(content or "")
