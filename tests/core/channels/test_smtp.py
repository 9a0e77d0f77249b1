"""SMTP against a real local aiosmtpd server: message, headers and unsubscribe line arrive as sent."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.channels.base import NotSent, OutgoingMessage
from core.channels.smtp_email import SmtpSender
from core.config import ConfigError, Settings
from core.db import Database
from core.errors import ProviderAccountRefused
from tests.conftest import make_settings
from tests.support.certificates import self_signed_certificate
from tests.support.fake_smtp import Inbox, smtp_relay

USER, PASSWORD = "mailer", "s3cret"
# Login without TLS keeps the test server simple; aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    with smtp_relay(_authenticator) as relay:
        yield relay


def smtp_settings(controller: Controller, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "email_provider": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": controller.port,
        "smtp_username": USER,
        "smtp_password": PASSWORD,
        "smtp_starttls": False,
        "smtp_from": "sales@acme.example",
        "smtp_timeout_seconds": 5,
        "email_unsubscribe_url": "https://acme.example/unsubscribe/{token}",
        "cookie_key": "k" * 40,
    }
    values.update(overrides)
    return make_settings("sqlite://", **values)


def outgoing(to: str = "ada@analytical.example") -> OutgoingMessage:
    return OutgoingMessage(
        tenant_id=1,
        campaign_id=2,
        channel="email",
        to_address=to,
        subject="A quick idea for Analytical Engines",
        body="Hi Ada,\n\nA thought.\n\n--\nTo stop receiving these emails, reply 'unsubscribe'.\n1 Main St",
        idempotency_key="cl7-s0",
    )


def _received(inbox: Inbox) -> EmailMessage:
    assert len(inbox.envelopes) == 1
    return message_from_bytes(inbox.envelopes[0].content, policy=policy.default)


def test_message_headers_and_unsubscribe_line_arrive(
    smtp_server: tuple[Controller, Inbox], db: Database
) -> None:
    controller, inbox = smtp_server
    receipt = SmtpSender(smtp_settings(controller)).send(outgoing())
    email = _received(inbox)
    assert inbox.envelopes[0].mail_from == "sales@acme.example"
    assert inbox.envelopes[0].rcpt_tos == ["ada@analytical.example"]
    assert email["Subject"] == "A quick idea for Analytical Engines"
    assert email["From"] == "sales@acme.example" and email["To"] == "ada@analytical.example"
    unsubscribe = str(email["List-Unsubscribe"]).strip()
    assert unsubscribe.startswith("<https://acme.example/unsubscribe/")
    assert "<mailto:sales@acme.example?subject=unsubscribe>" in unsubscribe
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = email.get_content()
    assert "To stop receiving these emails, reply 'unsubscribe'." in body and "1 Main St" in body
    assert receipt.provider_message_id in email["Message-ID"]


def test_without_an_https_url_only_mailto_and_no_one_click(
    smtp_server: tuple[Controller, Inbox], db: Database
) -> None:
    controller, inbox = smtp_server
    SmtpSender(smtp_settings(controller, email_unsubscribe_url=None)).send(outgoing())
    email = _received(inbox)
    assert str(email["List-Unsubscribe"]).strip() == "<mailto:sales@acme.example?subject=unsubscribe>"
    assert email["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    ("overrides", "to", "permanent", "reason"),
    [
        # smtplib tries LOGIN after PLAIN fails, which this server leaves hanging: a short timeout.
        (
            {"smtp_password": "wrong", "smtp_timeout_seconds": 1},
            "ada@analytical.example",
            False,
            "refused the session",
        ),
        ({}, "bounce@analytical.example", True, "refused bounce@analytical.example"),
        # The server offers no STARTTLS: we refuse to continue in plain text.
        ({"smtp_starttls": True}, "ada@analytical.example", False, "refused the session"),
    ],
)
def test_refusals_are_not_sent(
    smtp_server: tuple[Controller, Inbox],
    db: Database,
    overrides: dict[str, Any],
    to: str,
    permanent: bool,
    reason: str,
) -> None:
    controller, inbox = smtp_server
    with pytest.raises(NotSent) as refusal:
        SmtpSender(smtp_settings(controller, **overrides)).send(outgoing(to))
    assert refusal.value.permanent is permanent and reason in refusal.value.reason
    assert inbox.envelopes == []


def test_unreachable_server_is_not_sent(db: Database) -> None:
    settings = make_settings(
        "sqlite://", smtp_host="127.0.0.1", smtp_port=1, smtp_from="a@b.example", smtp_starttls=False
    )
    with pytest.raises(NotSent, match="cannot connect"):
        SmtpSender(settings).send(outgoing())


def test_unsubscribe_tokens_are_signed_with_the_deployments_secret() -> None:
    values = {"smtp_host": "127.0.0.1", "smtp_from": "a@b.example",
              "email_unsubscribe_url": "https://acme.example/u/{token}"}
    # Outside development mode a missing key stops the sender, instead of a key anyone knows.
    with pytest.raises(ConfigError, match="LEADFLOW_COOKIE_KEY"):
        SmtpSender(make_settings("sqlite://", dev_mode=False, **values))
    one = SmtpSender(make_settings("sqlite://", cookie_key="k" * 40, **values))
    other = SmtpSender(make_settings("sqlite://", cookie_key="z" * 40, **values))
    url = one.unsubscribe_url(outgoing())
    assert url is not None and url.startswith("https://acme.example/u/")
    assert url != other.unsubscribe_url(outgoing())  # the token depends on the secret
    assert url != one.unsubscribe_url(outgoing("grace@analytical.example"))  # and on the address


def test_missing_settings_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LEADFLOW_SMTP_HOST"):
        SmtpSender(make_settings("sqlite://"))


# -- STARTTLS: a real TLS session, the certificate verified ------------------------------------


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Iterator[tuple[Controller, Inbox, Path]]:
    """A relay that requires STARTTLS before anything else, and login only over TLS."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    with smtp_relay(_authenticator, auth_require_tls=True, require_starttls=True,
                    tls_context=context) as (controller, inbox):
        yield controller, inbox, cert_path


def test_starttls_then_login_then_the_message(
    tls_smtp_server: tuple[Controller, Inbox, Path], db: Database
) -> None:
    controller, inbox, cert_path = tls_smtp_server
    settings = smtp_settings(controller, smtp_starttls=True, smtp_ca_file=str(cert_path))
    SmtpSender(settings).send(outgoing())
    email = _received(inbox)
    assert email["Subject"] == "A quick idea for Analytical Engines"
    assert "To stop receiving these emails" in email.get_content()


def test_a_certificate_the_system_does_not_trust_is_refused(
    tls_smtp_server: tuple[Controller, Inbox, Path], db: Database
) -> None:
    controller, inbox, _ = tls_smtp_server
    with pytest.raises(NotSent, match="refused the session") as refusal:
        SmtpSender(smtp_settings(controller, smtp_starttls=True)).send(outgoing())
    assert "CERTIFICATE_VERIFY_FAILED" in refusal.value.reason and not refusal.value.permanent
    assert inbox.envelopes == []


# -- the account login never reaches an error a user sees ----------------------------------------

RELAY_LOGIN, RELAY_PASSWORD = "relay-7731@mailer.example", "pw-4b1e99"


class EchoingRelay(Inbox):
    """A relay that names the account in its refusals, as many hosted relays do."""

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else ""
        if address.startswith("impostor@"):
            return f"553 5.7.1 <{address}>: Sender address rejected: not owned by user {login}"
        envelope.mail_from = address
        return "250 OK"


def _echoing_authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    assert isinstance(auth_data, LoginPassword)
    if auth_data.password == RELAY_PASSWORD.encode():
        return AuthResult(success=True, auth_data=auth_data.login)
    login = auth_data.login.decode()
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 Authentication failed for {login}")


@pytest.fixture
def echoing_relay() -> Iterator[Controller]:
    # PLAIN only: the refusal is answered, never left hanging.
    relay = smtp_relay(_echoing_authenticator, EchoingRelay(), auth_exclude_mechanism=["LOGIN"])
    with relay as (controller, _):
        yield controller


@pytest.mark.parametrize(
    ("overrides", "sender", "reason"),
    [
        # A refused login is the account's problem (the campaign pauses), not the message's.
        ({"smtp_password": "wrong-password"}, None, "refused the login (535)"),
        ({}, "impostor@acme.example", "refused the message: 553 5.7.1"),
    ],
)
def test_the_account_login_never_reaches_the_reason(
    echoing_relay: Controller, db: Database, overrides: dict[str, Any], sender: str | None, reason: str
) -> None:
    settings = smtp_settings(
        echoing_relay, **{"smtp_username": RELAY_LOGIN, "smtp_password": RELAY_PASSWORD, **overrides}
    )
    message = outgoing()
    if sender:
        message = OutgoingMessage(**{**message.__dict__, "from_address": sender})
    with pytest.raises((NotSent, ProviderAccountRefused)) as refusal:
        SmtpSender(settings).send(message)
    assert RELAY_LOGIN in str(refusal.value.__cause__)  # the server did echo it
    assert reason in refusal.value.reason
    assert RELAY_LOGIN not in refusal.value.reason and "relay-7731" not in str(refusal.value)
    assert "b'" not in refusal.value.reason  # the server's words, not a bytes repr
