"""SMS through Twilio's official SDK; `twilio_base_url` points it at another host (tests, proxies)."""

from __future__ import annotations

import threading
from typing import Any

from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, RequestException
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from core.channels.base import NotSent, OutgoingMessage, ProviderCallFailed, SendReceipt, remember_secrets
from core.config import ConfigError, Settings
from core.errors import ProviderAccountRefused
from core.inbound.urls import twilio_status_callback

TWILIO_API_ROOT = "https://api.twilio.com"
OPTED_OUT_CODES = frozenset({21610})  # "Attempt to send to unsubscribed recipient"
# Codes that mean the request cannot succeed as it is (bad number, unreachable, not mobile).
PERMANENT_CODES = frozenset({21211, 21212, 21408, 21612, 21614, 30003, 30005, 30006})
# Codes that refuse the account, not the message: credentials (20003, 20151), an inactive or
# suspended account (20005), test credentials on live resources (20008), forbidden (20403).
ACCOUNT_CODES = frozenset({20003, 20005, 20008, 20151, 20403})
SEND_TIMEOUT_SECONDS = 15.0


class _RedirectingHttpClient(TwilioHttpClient):
    """The SDK's HTTP client with api.twilio.com replaced by a configured base URL."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API_ROOT):
            url = self._base_url + url[len(TWILIO_API_ROOT) :]
        return super().request(method, url, *args, **kwargs)


class TwilioSender:
    """Sends SMS with the Twilio REST API; one SDK client per thread (requests sessions are not shared)."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number):
            raise ConfigError(
                "LEADFLOW_SMS_PROVIDER is 'twilio' but LEADFLOW_TWILIO_ACCOUNT_SID, "
                "LEADFLOW_TWILIO_AUTH_TOKEN or LEADFLOW_TWILIO_FROM_NUMBER is missing"
            )
        self.settings = settings
        self._local = threading.local()
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
        remember_secrets(settings.twilio_account_sid, token)

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            settings = self.settings
            http: TwilioHttpClient = (
                _RedirectingHttpClient(settings.twilio_base_url, timeout=SEND_TIMEOUT_SECONDS)
                if settings.twilio_base_url
                else TwilioHttpClient(timeout=SEND_TIMEOUT_SECONDS)
            )
            token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
            client = Client(settings.twilio_account_sid, token, http_client=http)
            self._local.client = client
        return client

    def send(self, message: OutgoingMessage) -> SendReceipt:
        kwargs: dict[str, Any] = {
            "to": message.to_address,
            "body": message.body,
            "from_": message.from_address or self.settings.twilio_from_number,
        }
        callback = twilio_status_callback(self.settings, message.idempotency_key)
        if callback:
            kwargs["status_callback"] = callback
        # The SDK's and requests' messages name the request URI, which holds the account SID:
        # every error leaves here rebuilt from its parts and redacted (NotSent, ProviderCallFailed).
        try:
            created = self._client().messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            refusal = _not_sent(exc)
            if refusal is None:  # a 5xx: Twilio may or may not have queued it
                raise ProviderCallFailed(f"Twilio answered {_describe(exc)}", status=exc.status) from exc
            raise refusal from exc
        except (ConnectTimeout, RequestsConnectionError) as exc:
            if isinstance(exc, ConnectTimeout) or "Connection refused" in str(exc):
                # The request never left: nothing can have been sent.
                raise NotSent(f"cannot reach Twilio: {_network_problem(exc)}", permanent=False) from exc
            raise ProviderCallFailed(f"the connection to Twilio broke: {_network_problem(exc)}") from exc
        except RequestException as exc:  # a read timeout: the request may have arrived
            raise ProviderCallFailed(f"Twilio did not answer: {_network_problem(exc)}") from exc
        return SendReceipt(str(created.sid))

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None  # Twilio has no idempotency keys: a person decides (the message is `unknown`)


def _describe(exc: TwilioRestException | TwilioServiceException) -> str:
    """Status, code and Twilio's words, without the request URI (never str(exc): on a terminal
    the SDK prints the method and URI)."""
    if isinstance(exc, TwilioServiceException):
        words = exc.title + (f": {exc.detail}" if exc.detail else "")
    else:
        words = str(exc.msg or "")
    code = f", error {exc.code}" if exc.code and exc.code != exc.status else ""
    return f"HTTP {exc.status}{code}: {words}".rstrip(": ")


def _network_problem(exc: RequestException) -> str:
    """The kind of network failure, without requests' message (it names the whole URL)."""
    reason = type(exc).__name__
    inner = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{reason} ({type(inner).__name__})" if inner is not None else reason


def _not_sent(exc: TwilioRestException | TwilioServiceException) -> NotSent | ProviderAccountRefused | None:
    """The refusal an error answer means, or None when Twilio may have queued the message."""
    code = exc.code or 0
    if code in ACCOUNT_CODES or exc.status in (401, 403):
        return ProviderAccountRefused(
            f"Twilio refused the account (error {code or exc.status}): check "
            "LEADFLOW_TWILIO_ACCOUNT_SID, LEADFLOW_TWILIO_AUTH_TOKEN and the account's status, "
            "then resume the campaign",
            provider="twilio",
        )
    if code in OPTED_OUT_CODES:
        return NotSent(f"the recipient has opted out (Twilio {code})", permanent=True, opted_out=True)
    if exc.status == 429:
        return NotSent("Twilio rate limit (429)", permanent=False, retry_after=1.0)
    if code in PERMANENT_CODES or 400 <= exc.status < 500:
        return NotSent(f"Twilio refused the message: {_describe(exc)}", permanent=True)
    return None
