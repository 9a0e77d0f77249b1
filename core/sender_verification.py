"""Email sender verification: a tenant proves it may send as its From address before it does.

Two ways, as mail platforms offer them:
- the domain: a DNS TXT record `leadflow-verification=<token>` at `_leadflow.<domain>` or at the
  domain itself proves control of the domain, and so of every address at it;
- the address: a code sent to the address (through the deployment's email channel: the outbox
  in development) and typed back in Admin > Settings proves control of that one address.

One tenant per domain and per address: a domain or address verified by one tenant cannot be
verified by another (a unique index is the backstop). A domain outranks an address: a tenant may
not confirm an address at a domain another tenant has verified, and when a tenant verifies a
domain, addresses at it that other tenants had confirmed stop counting (their audit log says why).
To move a domain to another tenant, its holder removes the verification first.

Without a sender of its own a tenant sends from the deployment's LEADFLOW_SMTP_FROM, which the
operator set: nothing to verify.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Protocol

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.channels.base import NotSent, OutgoingMessage, Sender
from core.channels.measured import measured_send
from core.config import Settings
from core.db import Database
from core.errors import Conflict, ValidationError
from core.lifecycle import pause_campaign_in
from core.models import OutboxMessage, SenderVerification, SenderVerificationKind, Tenant
from core.permissions import Actor, Permission
from core.text import plural

TXT_PREFIX = "leadflow-verification="
TXT_LABEL = "_leadflow"
CODE_DIGITS = 8
CODE_LIFETIME = timedelta(hours=24)
CODE_RESEND_AFTER = timedelta(minutes=1)
MAX_CODE_ATTEMPTS = 5
DNS_TIMEOUT_SECONDS = 5.0
DOMAIN = SenderVerificationKind.domain.value
ADDRESS = SenderVerificationKind.address.value
OUTBOX = "outbox"
CODE_KEY_PREFIX = "sender-code-"


class DnsLookupFailed(Exception):
    """The DNS could not be asked (timeout, server failure): not an answer either way."""


class TxtResolver(Protocol):
    """Looks up TXT records; injected so that tests need no network."""

    def txt_records(self, name: str) -> list[str]:
        """The TXT strings at `name` (each record's parts joined); [] when there are none."""
        ...


class DnsPythonResolver:
    """The system's DNS servers through dnspython, with a short overall deadline."""

    def __init__(self, timeout: float = DNS_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout

    def txt_records(self, name: str) -> list[str]:
        import dns.exception
        import dns.resolver

        try:
            answer = dns.resolver.resolve(name, "TXT", lifetime=self.timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsLookupFailed(type(exc).__name__) from exc
        return [b"".join(record.strings).decode(errors="replace") for record in answer]


@dataclass(frozen=True)
class SenderIdentity:
    """The tenant's email sender split into what is verified: the address and its domain."""

    sender: str  # as set: "Acme Sales <sales@acme.example>"
    address: str  # compared form: case-folded, ASCII (IDNA) domain
    domain: str  # ASCII (IDNA) form


@dataclass(frozen=True)
class SenderStatus:
    """What Admin > Settings shows about the email sender."""

    sender: str | None  # None: the deployment's From address is used
    address: str | None
    domain: str | None
    verified_by: str | None  # "domain" | "address" | None
    dns_name: str | None  # where to publish the TXT record
    dns_value: str | None  # the record to publish (once a domain verification is started)
    code_sent_to: str | None  # an address with a code waiting to be typed in
    code_expires_at: datetime | None
    problem: str | None  # why it cannot be used, in words a person can act on

    @property
    def verified(self) -> bool:
        return self.verified_by is not None


def identity_of(sender: str | None) -> SenderIdentity | None:
    """The address and domain of an email sender setting; None when the tenant has none."""
    text = (sender or "").strip()
    if not text:
        return None
    _, raw = parseaddr(text)
    try:
        valid = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"email sender '{text}' is not valid ({exc})") from exc
    local = valid.local_part
    return SenderIdentity(text, f"{local.casefold()}@{valid.ascii_domain}", valid.ascii_domain)


def txt_name(domain: str) -> str:
    return f"{TXT_LABEL}.{domain}"


def _not_verified(identity: SenderIdentity) -> str:
    return (
        f"the email sender {identity.address} is not verified: publish the DNS record for "
        f"{identity.domain} or confirm the address with the code sent to it, in Admin > Settings; "
        "email campaigns send once it is verified"
    )


def _claimed_elsewhere(identity: SenderIdentity) -> str:
    return (
        f"{identity.domain} (or {identity.address}) is verified as a sender by another tenant; "
        "use an address at a domain you control, or ask the holder to remove its verification"
    )


def _verified_here(
    session: Session, tenant_id: int, identity: SenderIdentity, provider: str | None = None
) -> str | None:
    """ "domain", "address" or None. A code that went to the outbox proves nothing once email
    goes out through a real provider: it counts only while the provider is the outbox (or
    unknown: `provider` None)."""
    rows = session.execute(
        select(SenderVerification.kind, SenderVerification.via).where(
            SenderVerification.tenant_id == tenant_id,
            SenderVerification.verified_at.is_not(None),
            (
                (SenderVerification.kind == DOMAIN) & (SenderVerification.value == identity.domain)
                | (SenderVerification.kind == ADDRESS) & (SenderVerification.value == identity.address)
            ),
        )
    ).all()
    kinds = {kind for kind, via in rows if not (via == OUTBOX and provider not in (None, OUTBOX))}
    return DOMAIN if DOMAIN in kinds else ADDRESS if ADDRESS in kinds else None


def unverified_sender_reason(
    session: Session, tenant_id: int, sender: str | None, *, provider: str | None = None
) -> str | None:
    """Why the tenant may not send email as `sender` now, or None when it may.

    Reads only the tenant's own rows: a tenant session will do. What other tenants hold is
    settled when a verification is made (see the module's docstring). `provider`: the email
    provider that will send, when known.
    """
    identity = identity_of(sender)
    if identity is None or _verified_here(session, tenant_id, identity, provider):
        return None
    if _verified_here(session, tenant_id, identity):
        return (
            f"the email sender {identity.address} was confirmed through the outbox, where nothing "
            f"is really sent; now that email goes out through {provider}, send a new code or verify "
            "the domain in Admin > Settings"
        )
    return _not_verified(identity)


def email_sender_reason(
    db: Database, tenant_id: int, sender: str | None, *, provider: str | None = None
) -> str | None:
    """`unverified_sender_reason` in a session of its own (the pipeline's validate step)."""
    if not (sender or "").strip():
        return None
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        return unverified_sender_reason(session, tenant_id, sender, provider=provider)


def hold_campaign_for_unverified_sender(
    db: Database, tenant_id: int, campaign_id: int, sender: str | None, *, provider: str | None = None
) -> str | None:
    """The send path's check: None when the sender may be used, else the reason, with the
    campaign paused for it (the lead is left for when it resumes, not failed)."""
    reason = email_sender_reason(db, tenant_id, sender, provider=provider)
    if reason is None:
        return None
    with db.session(tenant_id=tenant_id) as session, session.begin():
        pause_campaign_in(session, campaign_id, reason)
    return reason


def claimed_by_another_tenant(db: Database, tenant_id: int, sender: str | None) -> str | None:
    """Why another tenant holds this sender's domain or address, or None (setting the sender)."""
    identity = identity_of(sender)
    if identity is None:
        return None
    with db.session(system=True, read_only=True) as session:
        held = session.scalar(
            select(SenderVerification.id).where(
                SenderVerification.tenant_id != tenant_id,
                SenderVerification.verified_at.is_not(None),
                (
                    (SenderVerification.kind == DOMAIN) & (SenderVerification.value == identity.domain)
                    | (SenderVerification.kind == ADDRESS) & (SenderVerification.value == identity.address)
                ),
            )
        )
    return _claimed_elsewhere(identity) if held is not None else None


# -- the status shown in Admin > Settings -------------------------------------------------------


def _tenant_sender(session: Session, tenant_id: int) -> tuple[Tenant, SenderIdentity | None]:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise ValidationError(f"tenant {tenant_id} does not exist")
    return tenant, identity_of(tenant.email_sender)


def _record(session: Session, kind: str, value: str) -> SenderVerification | None:
    return session.scalar(
        select(SenderVerification).where(SenderVerification.kind == kind, SenderVerification.value == value)
    )


def sender_status(db: Database, actor: Actor, *, now: datetime | None = None) -> SenderStatus:
    """The email sender, whether it is verified and what is left to do."""
    actor.require(Permission.manage_settings)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        _, identity = _tenant_sender(session, actor.tenant_id)
        if identity is None:
            return SenderStatus(None, None, None, None, None, None, None, None, None)
        verified_by = _verified_here(session, actor.tenant_id, identity)
        domain = _record(session, DOMAIN, identity.domain)
        address = _record(session, ADDRESS, identity.address)
    code_waiting = (
        address is not None
        and address.verified_at is None
        and address.expires_at is not None
        and address.expires_at > now
        and address.failed_attempts < MAX_CODE_ATTEMPTS
    )
    return SenderStatus(
        sender=identity.sender,
        address=identity.address,
        domain=identity.domain,
        verified_by=verified_by,
        dns_name=txt_name(identity.domain),
        dns_value=f"{TXT_PREFIX}{domain.token}" if domain is not None else None,
        code_sent_to=identity.address if code_waiting else None,
        code_expires_at=address.expires_at if code_waiting and address is not None else None,
        problem=None if verified_by else _not_verified(identity),
    )


# -- the domain: a DNS TXT record ----------------------------------------------------------------


def _require_sender(session: Session, tenant_id: int) -> SenderIdentity:
    _, identity = _tenant_sender(session, tenant_id)
    if identity is None:
        raise ValidationError(
            "set an email sender first; without one, email goes out from the deployment's "
            "address, which needs no verification"
        )
    return identity


def start_domain_verification(db: Database, actor: Actor) -> SenderStatus:
    """The TXT record to publish for the sender's domain (the same one until it is verified)."""
    actor.require(Permission.manage_settings)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        identity = _require_sender(session, actor.tenant_id)
        if claimed_by_another_tenant(db, actor.tenant_id, identity.sender):
            raise Conflict(_claimed_elsewhere(identity))
        if _record(session, DOMAIN, identity.domain) is None:
            session.add(
                SenderVerification(
                    tenant_id=actor.tenant_id,
                    kind=DOMAIN,
                    value=identity.domain,
                    token=secrets.token_hex(16),
                )
            )
            record_audit(
                session,
                tenant_id=actor.tenant_id,
                user_id=actor.user_id,
                action="start_verification",
                entity="sender_domain",
                entity_id=identity.domain[:64],
            )
    return sender_status(db, actor)


def _published(resolver: TxtResolver, domain: str, token: str) -> bool:
    expected = f"{TXT_PREFIX}{token}"
    for name in (txt_name(domain), domain):
        try:
            records = resolver.txt_records(name)
        except DnsLookupFailed as exc:
            raise ValidationError(
                f"the DNS lookup of {name} failed ({exc}); try again in a few minutes"
            ) from None
        if any(record.strip().strip('"').strip() == expected for record in records):
            return True
    return False


def check_domain_verification(
    db: Database, actor: Actor, *, resolver: TxtResolver | None = None, now: datetime | None = None
) -> SenderStatus:
    """Look the TXT record up; verified when it holds this tenant's token."""
    actor.require(Permission.manage_settings)
    now = now or datetime.now(UTC)
    resolver = resolver or DnsPythonResolver()
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        identity = _require_sender(session, actor.tenant_id)
        record = _record(session, DOMAIN, identity.domain)
        if record is None:
            raise ValidationError(
                f"start the verification of {identity.domain} first: it gives the record to publish"
            )
        token, already = record.token, record.verified_at is not None
    if already:
        return sender_status(db, actor)
    found = _published(resolver, identity.domain, token)  # outside any transaction: DNS is slow
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        record = _record(session, DOMAIN, identity.domain)
        if record is None:
            raise Conflict(f"the verification of {identity.domain} was removed meanwhile; start it again")
        record.last_checked_at = now
        if not found:
            session.flush()
            missing = (
                f"no TXT record {TXT_PREFIX}{token} was found at {txt_name(identity.domain)} or "
                f"{identity.domain}; publish it with your DNS provider and check again (new records "
                "can take up to an hour to appear)"
            )
        else:
            missing = None
            _mark_verified(session, actor, record, identity, now=now, entity="sender_domain",
                           entity_id=identity.domain, method="dns")
    if missing:
        raise ValidationError(missing)
    _retire_addresses_of_others(db, actor.tenant_id, identity.domain)
    return sender_status(db, actor)


def _retire_addresses_of_others(db: Database, tenant_id: int, domain: str) -> None:
    """The domain's owner has proven it: other tenants' confirmed addresses at it stop counting."""
    with db.session(system=True) as session, session.begin():
        retired = session.execute(
            update(SenderVerification)
            .where(
                SenderVerification.kind == ADDRESS,
                SenderVerification.value.like(f"%@{domain}"),
                SenderVerification.tenant_id != tenant_id,
                SenderVerification.verified_at.is_not(None),
            )
            .values(verified_at=None, expires_at=None)
            .returning(SenderVerification.tenant_id, SenderVerification.value)
        ).all()
        for other_tenant, address in retired:
            record_audit(
                session,
                tenant_id=other_tenant,
                user_id=None,
                action="revoke_verification",
                entity="sender_address",
                entity_id=address[:64],
                details={"reason": f"{domain} was verified through DNS by its owner"},
            )


def remove_verification(db: Database, actor: Actor) -> SenderStatus:
    """Forget this tenant's verifications of the current sender's domain and address."""
    actor.require(Permission.manage_settings)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        identity = _require_sender(session, actor.tenant_id)
        for kind, value in ((DOMAIN, identity.domain), (ADDRESS, identity.address)):
            record = _record(session, kind, value)
            if record is not None:
                session.delete(record)
                record_audit(
                    session,
                    tenant_id=actor.tenant_id,
                    user_id=actor.user_id,
                    action="remove_verification",
                    entity=f"sender_{kind}",
                    entity_id=value[:64],
                )
    return sender_status(db, actor)


# -- the address: a code sent to it --------------------------------------------------------------


def _code_hash(record_id: int, code: str) -> str:
    return hashlib.sha256(f"{record_id}:{code}".encode()).hexdigest()


def send_address_code(
    db: Database,
    actor: Actor,
    settings: Settings,
    *,
    sender: Sender | None = None,
    now: datetime | None = None,
) -> SenderStatus:
    """Send a one-time code to the sender's address through the deployment's email channel."""
    actor.require(Permission.manage_settings)
    now = now or datetime.now(UTC)
    if sender is None:
        from core.channels.registry import senders_from_settings

        sender = senders_from_settings(settings, db)["email"]
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        tenant, _ = _tenant_sender(session, actor.tenant_id)
        identity = _require_sender(session, actor.tenant_id)
        if claimed_by_another_tenant(db, actor.tenant_id, identity.sender):
            raise Conflict(_claimed_elsewhere(identity))
        record = _record(session, ADDRESS, identity.address)
        if record is not None and record.verified_at is not None:
            raise Conflict(f"{identity.address} is already verified")
        if record is not None and record.expires_at is not None:
            wait = record.expires_at - CODE_LIFETIME + CODE_RESEND_AFTER - now
            if wait > timedelta(0):
                seconds = int(wait.total_seconds()) + 1
                raise Conflict(
                    f"a code was sent to {identity.address} moments ago; wait {seconds} seconds "
                    "before asking for another"
                )
        if record is None:
            record = SenderVerification(
                tenant_id=actor.tenant_id, kind=ADDRESS, value=identity.address, token=""
            )
            session.add(record)
            session.flush()
        record.token = _code_hash(record.id, code)
        record.via = sender.name
        record.failed_attempts = 0
        record.expires_at = now + CODE_LIFETIME
        record_audit(
            session,
            tenant_id=actor.tenant_id,
            user_id=actor.user_id,
            action="send_verification_code",
            entity="sender_address",
            entity_id=identity.address[:64],
        )
        message = OutgoingMessage(
            tenant_id=actor.tenant_id,
            campaign_id=None,
            channel="email",
            to_address=identity.address,
            subject=f"Your Leadflow sender code: {code}",
            body=(
                f"Someone in the Leadflow workspace '{tenant.name}' wants to send email as "
                f"{identity.address}.\n\nIf that is you or your team, enter this code in Admin > "
                f"Settings: {code}\n\nThe code works for {int(CODE_LIFETIME.total_seconds() // 3600)} "
                "hours. If you did not expect this email, ignore it: nothing is sent as you unless "
                "the code is entered."
            ),
            idempotency_key=f"{CODE_KEY_PREFIX}{record.id}-{secrets.token_hex(6)}",
        )
    try:
        measured_send(sender, message)
    except NotSent as exc:
        raise ValidationError(f"the code could not be sent to {identity.address}: {exc.reason}") from None
    return sender_status(db, actor, now=now)


def code_in_outbox(db: Database, actor: Actor) -> str | None:
    """The last code email in the outbox for the sender's address (development: nothing is sent,
    so the page shows it; a code read here proves nothing once a real provider sends)."""
    actor.require(Permission.manage_settings)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        _, identity = _tenant_sender(session, actor.tenant_id)
        if identity is None:
            return None
        return session.scalar(
            select(OutboxMessage.body)
            .where(
                OutboxMessage.to_address == identity.address,
                OutboxMessage.idempotency_key.startswith(CODE_KEY_PREFIX),
            )
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )


def confirm_address_code(
    db: Database, actor: Actor, code: str, *, now: datetime | None = None
) -> SenderStatus:
    """Verify the sender's address with the code sent to it."""
    actor.require(Permission.manage_settings)
    now = now or datetime.now(UTC)
    typed = "".join(str(code or "").split())
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        identity = _require_sender(session, actor.tenant_id)
        record = _record(session, ADDRESS, identity.address)
        if record is not None and record.verified_at is not None:
            return sender_status(db, actor, now=now)
        if record is None or record.expires_at is None:
            raise ValidationError(f"no code was sent to {identity.address}; send one first")
        if record.expires_at <= now or record.failed_attempts >= MAX_CODE_ATTEMPTS:
            raise ValidationError(f"the code sent to {identity.address} has expired; send a new one")
        if not hmac.compare_digest(record.token, _code_hash(record.id, typed)):
            record.failed_attempts += 1
            left = MAX_CODE_ATTEMPTS - record.failed_attempts
            wrong = f"that is not the code sent to {identity.address}; " + (
                f"{plural(left, 'try', 'tries')} left" if left else "send a new code"
            )
        else:
            wrong = None
            if claimed_by_another_tenant(db, actor.tenant_id, identity.sender):
                raise Conflict(_claimed_elsewhere(identity))
            record.expires_at = None
            _mark_verified(session, actor, record, identity, now=now, entity="sender_address",
                           entity_id=identity.address, method="code")
    if wrong:
        raise ValidationError(wrong)  # after the commit: the failed attempt is counted
    return sender_status(db, actor, now=now)


def _mark_verified(
    session: Session, actor: Actor, record: SenderVerification, identity: SenderIdentity, *,
    now: datetime, entity: str,
    entity_id: str, method: str,
) -> None:
    """Record a proof that succeeded: verified now, unless another tenant holds the sender (the
    unique index is the last word in a race), with the audit entry."""
    record.verified_at = now
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(_claimed_elsewhere(identity)) from None
    record_audit(
        session,
        tenant_id=actor.tenant_id,
        user_id=actor.user_id,
        action="verify",
        entity=entity,
        entity_id=entity_id[:64],
        details={"method": method},
    )
