"""The public URLs providers call, built from LEADFLOW_PUBLIC_URL: one place for their paths.

The paths are fixed by issue 14 (providers and scripts depend on them); the api mounts its
routes on them and the Admin page shows the full URLs to paste into Twilio.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from core.config import Settings

TWILIO_SMS_PATH = "/api/webhooks/twilio/sms"
TWILIO_STATUS_PATH = "/api/webhooks/twilio/status"
UNSUBSCRIBE_PATH = "/api/unsubscribe/{token}"
# The query parameter of the status callback URL naming the ledger row (its idempotency key).
LEDGER_KEY_PARAM = "key"


@dataclass(frozen=True)
class WebhookUrls:
    """The URLs to configure at the providers; None while LEADFLOW_PUBLIC_URL is unset."""

    public_url: str | None
    twilio_incoming: str | None
    twilio_status: str | None
    unsubscribe_pattern: str | None
    status_override: str | None  # LEADFLOW_TWILIO_STATUS_CALLBACK_URL, when set


def webhook_urls(settings: Settings) -> WebhookUrls:
    base = settings.public_url
    return WebhookUrls(
        public_url=base,
        twilio_incoming=f"{base}{TWILIO_SMS_PATH}" if base else None,
        twilio_status=f"{base}{TWILIO_STATUS_PATH}" if base else None,
        unsubscribe_pattern=f"{base}{UNSUBSCRIBE_PATH}" if base else None,
        status_override=settings.twilio_status_callback_url or None,
    )


def twilio_status_callback(settings: Settings, idempotency_key: str) -> str | None:
    """The StatusCallback URL for one send: the explicit override as configured, else the
    service's status webhook naming the ledger row (so a receipt that arrives before the SID is
    written still finds its message); None when neither is configured."""
    if settings.twilio_status_callback_url:
        return settings.twilio_status_callback_url
    if settings.public_url:
        key = quote(idempotency_key, safe="")
        return f"{settings.public_url}{TWILIO_STATUS_PATH}?{LEDGER_KEY_PARAM}={key}"
    return None
