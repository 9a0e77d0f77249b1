"""The senders configured by the settings, by channel."""

from __future__ import annotations

from core.channels.base import Sender
from core.channels.outbox import OutboxSender
from core.config import Settings


def senders_from_settings(settings: Settings) -> dict[str, Sender]:
    outbox = OutboxSender()
    senders: dict[str, Sender] = {"sms": outbox, "email": outbox}
    if settings.sms_provider == "twilio":
        from core.channels.twilio_sms import TwilioSender

        senders["sms"] = TwilioSender(settings)
    if settings.email_provider == "smtp":
        from core.channels.smtp_email import SmtpSender

        senders["email"] = SmtpSender(settings)
    return senders
