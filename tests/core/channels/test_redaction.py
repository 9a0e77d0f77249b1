"""Provider account ids, tokens and logins never reach a message a tenant user sees."""

from __future__ import annotations

import base64

import pytest

from core.channels.base import redact_messages_in, redact_secrets, remember_secrets

ACCOUNT_SID = "AC" + "3f9a0c1d7e" * 3 + "b2"
API_KEY_SID = "SK" + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    "text",
    [
        f"HTTP 404 error: The requested resource /2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json "
        "was not found",
        f"POST https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        f"account {ACCOUNT_SID.lower()} is suspended",
        f"AccountSid={ACCOUNT_SID}&ApiKey={API_KEY_SID}",
        f"'{ACCOUNT_SID}'",
    ],
)
def test_twilio_account_ids_are_redacted_wherever_they_stand(text: str) -> None:
    redacted = redact_secrets(text)
    assert ACCOUNT_SID.lower() not in redacted.lower()
    assert API_KEY_SID.lower() not in redacted.lower()
    assert "[redacted]" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "sent with twilio: SM" + "a" * 32,  # a message id is the lead's own receipt: kept
        "hash " + "ac" + "0" * 62,  # a 64-character digest that happens to start with ac
        "Accounts were updated for Acme",
    ],
)
def test_message_ids_and_ordinary_text_are_kept(text: str) -> None:
    assert redact_secrets(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-Abc123def456GHI789jkl", "sk-proj-Abc123def456GHI789jkl"),
        ("GET https://alice:hunter22@smtp.example.net/", "alice:hunter22"),
        ("Authorization: Basic QUMxMjM6dG9rZW4xMjM0NQ==", "QUMxMjM6dG9rZW4xMjM0NQ=="),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "eyJhbGciOiJIUzI1NiJ9.e30.abc"),
        ("InvalidClientTokenId: AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ],
)
def test_keys_and_credentials_of_other_shapes_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact_secrets(text)


def test_remembered_secrets_are_redacted_in_any_case_and_in_base64() -> None:
    login = "relay-login-7731@mailer.example"
    encoded = base64.b64encode(login.encode()).decode()
    remember_secrets(login, "pw-91c2e", None, "")
    text = f"535 authentication failed for {login.upper()} ({encoded}) password pw-91c2e"
    redacted = redact_secrets(text)
    assert "relay-login-7731" not in redacted.lower()
    assert encoded not in redacted
    assert "pw-91c2e" not in redacted
    assert redacted.startswith("535 authentication failed for [redacted]")


def test_remembered_secrets_are_redacted_as_whole_tokens_only() -> None:
    remember_secrets("mail")
    assert redact_secrets("login mail refused; check the email settings") == (
        "login [redacted] refused; check the email settings"
    )


def test_redact_messages_in_rewrites_only_the_texts_people_read() -> None:
    value = {
        "error": f"Accounts/{ACCOUNT_SID}",
        "n": 3,
        "events": [{"message": ACCOUNT_SID, "data": {"reason": ACCOUNT_SID}}],
        "draft_body": f"kept as written {ACCOUNT_SID}",
        "none": None,
    }
    assert redact_messages_in(value) == {
        "error": "Accounts/[redacted]",
        "n": 3,
        "events": [{"message": "[redacted]", "data": {"reason": "[redacted]"}}],
        "draft_body": f"kept as written {ACCOUNT_SID}",
        "none": None,
    }
