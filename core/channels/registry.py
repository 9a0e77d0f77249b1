"""The senders configured by the settings, by channel."""

from __future__ import annotations

from core.channels.base import Sender
from core.channels.outbox import OutboxSender
from core.config import Settings
from core.db import Database


def senders_from_settings(settings: Settings, db: Database) -> dict[str, Sender]:
    """The provider of each channel; the outbox (the default) records into `db`."""
    outbox = OutboxSender(db)
    senders: dict[str, Sender] = {"sms": outbox, "email": outbox}
    if settings.sms_provider == "twilio":
        from core.channels.twilio_sms import TwilioSender

        senders["sms"] = TwilioSender(settings)
    if settings.email_provider == "smtp":
        from core.channels.smtp_email import SmtpSender

        senders["email"] = SmtpSender(settings)
    return senders
