"""Email over SMTP: STARTTLS and login from the settings, List-Unsubscribe headers on every message."""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from core.channels.base import NotSent, OutgoingMessage, SendReceipt, remember_secrets
from core.config import ConfigError, Settings
from core.errors import ProviderAccountRefused
from core.inbound.unsubscribe import TokenSigner, unsubscribe_url_template

# Replies that refuse the account, not the message: authentication required (530), the
# mechanism refused (534), the credentials refused (535).
ACCOUNT_REPLY_CODES = frozenset({530, 534, 535})


class SmtpSender:
    """One SMTP connection per message: simple, thread-safe, and fine for campaign send rates."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        if not (settings.smtp_host and settings.smtp_from):
            raise ConfigError(
                "LEADFLOW_EMAIL_PROVIDER is 'smtp' but LEADFLOW_SMTP_HOST or LEADFLOW_SMTP_FROM is missing"
            )
        self.settings = settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        # Relays echo the login in their refusals: it is redacted from every reason shown.
        remember_secrets(settings.smtp_username, password)
        # The one-click URL's token is signed with the unsubscribe secret (or the cookie key):
        # refused at start when it is missing outside development mode, never a public key.
        self._url_template = unsubscribe_url_template(settings)
        self._signer = TokenSigner(settings) if self._url_template else None

    def unsubscribe_url(self, message: OutgoingMessage) -> str | None:
        """The one-click URL for this recipient, signed so it cannot be made for another."""
        if self._url_template is None or self._signer is None:
            return None
        token = self._signer.sign(tenant_id=message.tenant_id, lead_id=message.lead_id,
                                  channel=message.channel, address=message.to_address)
        return self._url_template.replace("{token}", token)

    def build(self, message: OutgoingMessage) -> EmailMessage:
        sender = message.from_address or self.settings.smtp_from or ""
        email = EmailMessage()
        email["From"] = sender
        email["To"] = message.to_address
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False)
        domain = sender.rpartition("@")[2] or "leadflow.local"
        email["Message-ID"] = make_msgid(idstring=message.idempotency_key.replace(":", "."), domain=domain)
        unsubscribe = [f"<mailto:{sender}?subject=unsubscribe>"]
        url = self.unsubscribe_url(message)
        if url and url.startswith("https://"):
            unsubscribe.insert(0, f"<{url}>")
            # RFC 8058 one-click unsubscribe needs an https URL to POST to.
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email["List-Unsubscribe"] = ", ".join(unsubscribe)
        email.set_content(message.body)
        return email

    def send(self, message: OutgoingMessage) -> SendReceipt:
        settings = self.settings
        email = self.build(message)
        try:
            smtp = smtplib.SMTP(
                settings.smtp_host or "", settings.smtp_port, timeout=settings.smtp_timeout_seconds
            )
        except OSError as exc:
            raise NotSent(f"cannot connect to the SMTP server: {exc}", permanent=False) from exc
        with smtp:
            try:
                if settings.smtp_starttls:
                    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
                    smtp.starttls(context=ssl.create_default_context(cafile=cafile))
                if settings.smtp_username:
                    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                    smtp.login(settings.smtp_username, password)
            except (smtplib.SMTPException, OSError) as exc:
                if isinstance(exc, smtplib.SMTPAuthenticationError) and exc.smtp_code in ACCOUNT_REPLY_CODES:
                    raise _account_refused(exc.smtp_code) from exc
                raise NotSent(
                    f"the SMTP server refused the session: {_smtp_words(exc)}", permanent=False
                ) from exc
            try:
                smtp.send_message(email)
            except smtplib.SMTPRecipientsRefused as exc:
                raise NotSent(
                    f"the SMTP server refused {message.to_address}: {exc.recipients}", permanent=True
                ) from exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code in ACCOUNT_REPLY_CODES:
                    raise _account_refused(exc.smtp_code) from exc
                raise NotSent(
                    f"the SMTP server refused the message: {_smtp_words(exc)}",
                    permanent=exc.smtp_code >= 500,
                ) from exc
        return SendReceipt(str(email["Message-ID"]).strip("<>") or str(uuid.uuid4()))

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None  # SMTP cannot be asked afterwards: a person decides (the message is `unknown`)


def _account_refused(code: int) -> ProviderAccountRefused:
    return ProviderAccountRefused(
        f"the SMTP server refused the login ({code}): check LEADFLOW_SMTP_USERNAME and "
        "LEADFLOW_SMTP_PASSWORD, then resume the campaign",
        provider="smtp",
    )


def _smtp_words(exc: Exception) -> str:
    """What the server said ("535 5.7.8 ..."), as text rather than smtplib's tuple of bytes."""
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        words = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {words}"
    return str(exc) or type(exc).__name__
