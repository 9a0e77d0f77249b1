"""The Twilio adapter with the official SDK, pointed at a local server standing in for the REST API."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator

import pytest
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]

from core.channels.base import NotSent, OutgoingMessage, ProviderCallFailed
from core.channels.twilio_sms import TwilioSender
from core.config import ConfigError, Settings
from core.db import Database
from tests.conftest import make_settings
from tests.support.fake_twilio import (
    BROKEN,
    INVALID,
    MESSAGE_SID,
    NOT_FOUND,
    OPTED_OUT,
    PROBLEM,
    SID,
    TOKEN,
    FakeTwilio,
    fake_twilio,
)


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


def twilio_settings(server: FakeTwilio) -> Settings:
    return make_settings(
        "sqlite://",
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14155550199",
        twilio_status_callback_url="https://acme.example/twilio/status",
        twilio_base_url=server.base_url,
    )


def sms(to: str) -> OutgoingMessage:
    return OutgoingMessage(
        tenant_id=1,
        campaign_id=1,
        channel="sms",
        to_address=to,
        body="Hi Ada. Reply STOP to opt out",
        idempotency_key="cl1-s0",
    )


def test_send_posts_the_message_with_callback_and_auth(twilio_server: FakeTwilio, db: Database) -> None:
    receipt = TwilioSender(twilio_settings(twilio_server)).send(sms("+14155550101"))
    assert receipt.provider_message_id == MESSAGE_SID
    request = twilio_server.requests[0]
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["form"] == {
        "To": "+14155550101",
        "From": "+14155550199",
        "Body": "Hi Ada. Reply STOP to opt out",
        "StatusCallback": "https://acme.example/twilio/status",
    }
    assert request["auth"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def test_the_status_callback_is_the_services_webhook_naming_the_ledger_row(
    twilio_server: FakeTwilio, db: Database
) -> None:
    settings = twilio_settings(twilio_server).model_copy(
        update={"twilio_status_callback_url": None, "public_url": "https://leadflow.example.com"}
    )
    TwilioSender(settings).send(sms("+14155550101"))
    assert twilio_server.requests[0]["form"]["StatusCallback"] == (
        "https://leadflow.example.com/api/webhooks/twilio/status?key=cl1-s0"
    )


def test_an_explicit_status_callback_url_wins_over_the_public_url(
    twilio_server: FakeTwilio, db: Database
) -> None:
    settings = twilio_settings(twilio_server).model_copy(update={"public_url": "https://leadflow.example.com"})
    TwilioSender(settings).send(sms("+14155550101"))
    assert twilio_server.requests[0]["form"]["StatusCallback"] == "https://acme.example/twilio/status"


def test_without_a_public_url_or_override_no_callback_is_asked(
    twilio_server: FakeTwilio, db: Database
) -> None:
    settings = twilio_settings(twilio_server).model_copy(update={"twilio_status_callback_url": None})
    TwilioSender(settings).send(sms("+14155550101"))
    assert "StatusCallback" not in twilio_server.requests[0]["form"]


@pytest.mark.parametrize(
    ("to", "opted_out", "permanent"),
    [(OPTED_OUT, True, True), (INVALID, False, True)],
)
def test_error_answers_are_not_sent(
    twilio_server: FakeTwilio, db: Database, to: str, opted_out: bool, permanent: bool
) -> None:
    with pytest.raises(NotSent) as refusal:
        TwilioSender(twilio_settings(twilio_server)).send(sms(to))
    assert refusal.value.opted_out is opted_out and refusal.value.permanent is permanent


def test_a_server_error_is_not_a_refusal(twilio_server: FakeTwilio, db: Database) -> None:
    # A 5xx may or may not have queued the message: the caller records it as unknown.
    with pytest.raises(ProviderCallFailed) as error:
        TwilioSender(twilio_settings(twilio_server)).send(sms(BROKEN))
    assert error.value.status == 500 and len(twilio_server.requests) == 1
    assert isinstance(error.value.__cause__, TwilioRestException)  # kept for the server's log


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("to", [NOT_FOUND, BROKEN, PROBLEM])
def test_the_account_sid_never_reaches_the_error_a_user_sees(
    twilio_server: FakeTwilio, db: Database, monkeypatch: pytest.MonkeyPatch, to: str, terminal: bool
) -> None:
    # On a terminal the SDK's own message prints the request URI, which holds the account SID.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal, raising=False)
    with pytest.raises((NotSent, ProviderCallFailed)) as error:
        TwilioSender(twilio_settings(twilio_server)).send(sms(to))
    cause = error.value.__cause__
    assert cause is not None and SID in f"{cause} {getattr(cause, 'uri', '')}"  # the raw one has it
    shown = f"{error.value} {getattr(error.value, 'reason', '')}"
    assert SID not in shown and SID.lower() not in shown.lower() and TOKEN not in shown
    assert "Twilio" in shown and "\033" not in shown


def test_a_dropped_connection_does_not_show_the_url(db: Database) -> None:
    # Nothing listens there: requests' message names the whole URL, account SID included.
    settings = make_settings(
        "sqlite://",
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number="+14155550199",
        twilio_base_url="http://127.0.0.1:9",
    )
    with pytest.raises((NotSent, ProviderCallFailed)) as error:
        TwilioSender(settings).send(sms("+14155550101"))
    assert SID in str(error.value.__cause__)
    assert SID not in str(error.value) and "Twilio" in str(error.value)


def test_missing_credentials_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TWILIO"):
        TwilioSender(make_settings("sqlite://", sms_provider="twilio"))
