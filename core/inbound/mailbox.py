"""The inbound mailbox: replies and bounces read over IMAP, routed to their tenant and stored.

The job runner polls the installation's mailbox (`LEADFLOW_IMAP_*`) every
`LEADFLOW_IMAP_POLL_SECONDS`. Each unseen message is read without marking it (BODY.PEEK), handled
in its own transaction, and only then flagged \\Seen: a worker that dies in between leaves it
unseen, and the next poll handles it again, which changes nothing the second time (a reply is
stored once per Message-ID by `record_inbound`; a bounce's suppression and ledger mark are
idempotent). Two workers polling at once are safe for the same reason.

Routing and threading: the email a message answers is found from its `In-Reply-To`, then its
`References` (newest first), against the Message-ID the SMTP channel set (`Message.
provider_message_id`); that email's tenant is the message's. Failing that, the tenant whose email
sender is the message's `To` (or `Cc`, `Delivered-To`), and last the one tenant that has a lead
with the sender's address. A message no tenant claims is logged and left read.
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.policy import compat32
from enum import StrEnum

from imap_tools import AND, BaseMailBox, MailBox, MailBoxUnencrypted, MailMessageFlags
from imap_tools.errors import MailboxLoginError, UnexpectedCommandStatusError
from sqlalchemy import select

from core.channels.base import redact_secrets, remember_secrets
from core.config import ConfigError, Settings
from core.db import Database
from core.inbound.bounces import apply_delivery_report
from core.inbound.dsn import DeliveryReport, delivery_report, parse_email
from core.inbound.emails import InboundEmail, read_inbound_email, recipient_addresses
from core.inbound.store import record_inbound_in, tenant_for_email_address
from core.logs import get_logger
from core.models import Channel, InboundMessage, Lead, Message

log = get_logger(__name__)
PROVIDER = "imap"
# The message's bytes written back as parsed: no ">From " escaping, headers as they came.
AS_RECEIVED = compat32.clone(mangle_from_=False)


class Outcome(StrEnum):
    reply = "reply"  # stored for the reply agent
    repeat = "repeat"  # stored before: nothing changed
    bounce = "bounce"  # a permanent failure applied
    delay = "delay"  # a delay noted on the email
    report = "report"  # a delivery report that changed nothing (a repeat, or "delivered")
    unrouted = "unrouted"  # no tenant claims it


@dataclass(frozen=True)
class Thread:
    """The outbound email a message answers (or reports on)."""

    tenant_id: int
    message_id: int
    lead_id: int | None


@dataclass(frozen=True)
class Handled:
    outcome: Outcome
    tenant_id: int | None = None
    inbound_id: int | None = None
    message_id: int | None = None  # the outbound email it answers or reports on


@dataclass
class MailboxPoll:
    """What one poll did, counted by outcome."""

    outcomes: dict[str, int] = field(default_factory=dict)
    failed: int = 0

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


class MailboxUnavailable(RuntimeError):
    """The mailbox cannot be reached or refuses the login; the message says which and why."""


def handle_inbound_email(db: Database, raw: bytes, *, now: datetime | None = None) -> Handled:
    """Route one email (RFC 5322 bytes) to its tenant and store or apply it, in one transaction."""
    now = now or datetime.now(UTC)
    parsed = parse_email(raw)
    report = delivery_report(parsed)
    if report is not None:
        return _handle_report(db, recipient_addresses(parsed), report)
    email = read_inbound_email(raw, now=now, parsed=parsed)
    thread = find_thread(db, email.answered_ids)
    tenant_id = thread.tenant_id if thread else _tenant_for(db, email.to_addresses, email.from_address)
    if tenant_id is None:
        log.warning("inbound_email_unrouted", message_id=email.message_id)
        return Handled(Outcome.unrouted)
    with db.session(tenant_id=tenant_id) as session, session.begin():
        recorded = record_inbound_in(
            session, tenant_id=tenant_id, channel=Channel.email.value, from_address=email.from_address,
            to_address=_our_address(email), body=email.body, provider=PROVIDER,
            provider_message_id=email.message_id, received_at=email.received_at, subject=email.subject,
            in_reply_to_message_id=thread.message_id if thread else None,
        )
        if recorded.created and recorded.lead_id is None and thread and thread.lead_id is not None:
            # Answered from another address than the one written to (a colleague, an alias): the
            # email it answers says whose conversation it belongs to.
            row = session.get(InboundMessage, recorded.id)
            if row is not None:
                row.lead_id = thread.lead_id
    return Handled(Outcome.reply if recorded.created else Outcome.repeat, tenant_id, recorded.id,
                   thread.message_id if thread else None)


def _handle_report(db: Database, to: Sequence[str], report: DeliveryReport) -> Handled:
    ids = (report.original_message_id,) if report.original_message_id else ()
    thread = find_thread(db, ids)
    tenant_id = thread.tenant_id if thread else _tenant_for(
        db, to, *(r.address for r in report.recipients))
    if tenant_id is None:
        log.warning("delivery_report_unrouted", original_message_id=report.original_message_id)
        return Handled(Outcome.unrouted)
    with db.session(tenant_id=tenant_id) as session, session.begin():
        applied = apply_delivery_report(session, tenant_id=tenant_id, report=report)
    if applied.suppressed or (applied.message_changed and any(r.permanent for r in report.recipients)):
        outcome = Outcome.bounce
    elif applied.message_changed and applied.delayed:
        outcome = Outcome.delay
    else:
        outcome = Outcome.report
    log.info("delivery_report", tenant_id=tenant_id, outcome=outcome.value, message_id=applied.message_id,
             suppressed=len(applied.suppressed), delayed=len(applied.delayed))
    return Handled(outcome, tenant_id, None, applied.message_id)


def find_thread(db: Database, answered_ids: Sequence[str]) -> Thread | None:
    """The outbound email with the first of these Message-IDs that Leadflow sent, in any tenant."""
    if not answered_ids:
        return None
    with db.session(system=True, read_only=True) as session:
        rows = session.execute(
            select(Message.provider_message_id, Message.tenant_id, Message.id, Message.lead_id)
            .where(Message.provider_message_id.in_(list(answered_ids)),
                   Message.channel == Channel.email.value)
        ).all()
    found = {row.provider_message_id: Thread(row.tenant_id, row.id, row.lead_id) for row in rows}
    return next((found[i] for i in answered_ids if i in found), None)


def _tenant_for(db: Database, to_addresses: Sequence[str], *senders: str) -> int | None:
    for address in to_addresses:
        tenant_id = tenant_for_email_address(db, address)
        if tenant_id is not None:
            return tenant_id
    wanted = [s for s in senders if s]
    if not wanted:
        return None
    with db.session(system=True, read_only=True) as session:
        tenants = session.scalars(
            select(Lead.tenant_id).where(Lead.email.in_(wanted)).distinct().limit(2)).all()
    return tenants[0] if len(tenants) == 1 else None


def _our_address(email: InboundEmail) -> str:
    return email.to_addresses[0] if email.to_addresses else ""


# -- the IMAP side --------------------------------------------------------------------------------


@contextmanager
def open_mailbox(settings: Settings) -> Iterator[BaseMailBox]:
    """The configured mailbox, logged in with its folder selected; `MailboxUnavailable` otherwise."""
    if not settings.imap_host:
        raise ConfigError("LEADFLOW_IMAP_HOST is not set: there is no inbound mailbox to read")
    password = settings.imap_password.get_secret_value() if settings.imap_password else ""
    remember_secrets(settings.imap_username, password)
    where = f"{settings.imap_host}:{settings.imap_port}"
    try:
        if settings.imap_ssl:
            mailbox: BaseMailBox = MailBox(settings.imap_host, settings.imap_port,
                                           timeout=settings.imap_timeout_seconds,
                                           ssl_context=_tls_context(settings))
        else:
            mailbox = MailBoxUnencrypted(settings.imap_host, settings.imap_port,
                                         timeout=settings.imap_timeout_seconds)
        mailbox.login(settings.imap_username or "", password, initial_folder=settings.imap_folder)
    except MailboxLoginError as exc:
        raise MailboxUnavailable(
            f"the IMAP server {where} refused the login or the folder '{settings.imap_folder}': "
            f"{redact_secrets(str(exc))}; check LEADFLOW_IMAP_USERNAME, LEADFLOW_IMAP_PASSWORD "
            "and LEADFLOW_IMAP_FOLDER"
        ) from exc
    except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
        raise MailboxUnavailable(f"cannot read the IMAP server {where}: {redact_secrets(str(exc))}") from exc
    try:
        yield mailbox
    finally:
        try:
            mailbox.logout()
        except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError):
            pass  # the session is over either way


def _tls_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.imap_ca_file) if settings.imap_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def poll_mailbox(db: Database, settings: Settings, *, now: datetime | None = None) -> MailboxPoll:
    """Handle up to `imap_batch_size` unseen messages, each flagged \\Seen once handled. A message
    whose handling fails stays unseen for the next poll; the others go on."""
    poll = MailboxPoll()
    with open_mailbox(settings) as mailbox:
        uids = list(mailbox.uids(AND(seen=False)))[: settings.imap_batch_size]
        if not uids:
            return poll
        for message in mailbox.fetch(uid_list=uids, mark_seen=False, bulk=False):
            try:
                handled = handle_inbound_email(db, message.obj.as_bytes(policy=AS_RECEIVED), now=now)
            except Exception:
                poll.failed += 1
                log.exception("inbound_email_failed", uid=message.uid)
                continue
            if message.uid:
                mailbox.flag(message.uid, MailMessageFlags.SEEN, True)
            poll.add(handled.outcome)
    return poll
