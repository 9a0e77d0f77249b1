"""One-click unsubscribe tokens: signed per recipient, refused when forged, altered or moved."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core.config import Settings
from core.db import Database
from core.inbound.unsubscribe import (
    AUDIT_ACTION,
    InvalidToken,
    TokenSigner,
    mask_address,
    preview_unsubscribe,
    unsubscribe,
    unsubscribe_url_template,
)
from core.models import AuditLog, CampaignLead, Lead, Suppression
from tests.conftest import make_settings
from tests.core.inbound.samples import make_email_lead
from tests.factories import enrol, make_campaign, make_tenant

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
KEY = "7dQw0pZr2mXk9sLb4nVc1yHt6gJf3aEu8iOq5wRz0xNe"


def _settings(**overrides: object) -> Settings:
    return make_settings("sqlite://", **{"dev_mode": False, "cookie_key": KEY, **overrides})


def _sign(settings: Settings, tenant_id: int = 3, lead_id: int | None = 41,
          address: str = "ada@analytical.example") -> str:
    return TokenSigner(settings).sign(tenant_id=tenant_id, lead_id=lead_id, channel="email", address=address)


def test_a_token_reads_back_as_its_recipient_and_is_url_safe() -> None:
    settings = _settings()
    token = _sign(settings)
    recipient = TokenSigner(settings).read(token)
    assert (recipient.tenant_id, recipient.lead_id, recipient.channel, recipient.address) == (
        3, 41, "email", "ada@analytical.example")
    assert set(token) <= set(string.ascii_letters + string.digits + "-_.")
    assert "ada@" not in token  # the address is not written in the link in clear


def test_a_message_to_no_lead_gets_a_token_for_its_address_alone() -> None:
    settings = _settings()
    assert TokenSigner(settings).read(_sign(settings, lead_id=None)).lead_id is None


def test_every_single_character_change_is_refused() -> None:
    settings = _settings()
    token = _sign(settings)
    signer = TokenSigner(settings)
    alphabet = string.ascii_letters + string.digits + "-_"
    for index, char in enumerate(token):
        for other in {alphabet[(alphabet.find(char) + 1) % len(alphabet)], "A", "0"} - {char}:
            with pytest.raises(InvalidToken):
                signer.read(token[:index] + other + token[index + 1:])


def test_bit_flips_in_the_signature_bytes_are_refused() -> None:
    settings = _settings()
    payload, _, mac = _sign(settings).rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(mac + "="))
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        forged = f"{payload}.{base64.urlsafe_b64encode(bytes(flipped)).rstrip(b'=').decode()}"
        with pytest.raises(InvalidToken):
            TokenSigner(settings).read(forged)


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: "4" + t[1:],  # another tenant, same signature
        lambda t: t.replace(".41.", ".42.", 1),  # another lead
        lambda t: t.replace(".41.", ".041.", 1),  # the same number written otherwise
        lambda t: t.replace(".email.", ".sms.", 1),  # another channel
        lambda t: t + "A",
        lambda t: t[:-1],
        lambda t: "",
        lambda t: "3.41.email.x.y",
        lambda t: t.replace(".", "/"),
    ],
)
def test_a_token_moved_to_another_recipient_is_refused(forge: object) -> None:
    settings = _settings()
    with pytest.raises(InvalidToken):
        TokenSigner(settings).read(forge(_sign(settings)))  # type: ignore[operator]


def test_another_address_under_the_same_ids_is_refused() -> None:
    settings = _settings()
    token = _sign(settings)
    tenant, lead, channel, _, mac = token.split(".")
    other = base64.urlsafe_b64encode(b"eve@analytical.example").rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        TokenSigner(settings).read(".".join([tenant, lead, channel, other, mac]))


def test_a_token_of_another_deployment_is_refused_and_the_own_secret_wins() -> None:
    token = _sign(_settings())
    with pytest.raises(InvalidToken):
        TokenSigner(_settings(cookie_key=KEY[::-1])).read(token)
    secret = "Zq8vN3kT0pR7wX2cY5bM9hJ4fL6dG1sA"
    with_secret = _sign(_settings(unsubscribe_secret=secret))
    assert with_secret != token
    # The unsubscribe secret signs the tokens: rotating the cookie key keeps the links working.
    rotated = _settings(unsubscribe_secret=secret, cookie_key=KEY[::-1])
    assert TokenSigner(rotated).read(with_secret).lead_id == 41


def test_the_signer_needs_a_real_key_outside_development_mode() -> None:
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="LEADFLOW_COOKIE_KEY"):
        TokenSigner(make_settings("sqlite://", dev_mode=False))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        ({"public_url": "https://leads.acme.example/"}, "https://leads.acme.example/api/unsubscribe/{token}"),
        ({"public_url": "https://leads.acme.example", "email_unsubscribe_url": "https://u.acme.example/{token}"},
         "https://u.acme.example/{token}"),
    ],
)
def test_the_url_defaults_to_the_services_path_under_the_public_url(
    overrides: dict[str, str], expected: str | None
) -> None:
    assert unsubscribe_url_template(_settings(**overrides)) == expected


@pytest.mark.parametrize(
    ("address", "masked"),
    [("ada@analytical.example", "a***@analytical.example"), ("x@y.example", "x***@y.example")],
)
def test_the_page_shows_the_address_masked(address: str, masked: str) -> None:
    assert mask_address(address) == masked


# -- the unsubscribe itself -------------------------------------------------------------------


def _state(db: Database, tenant_id: int, lead_id: int) -> tuple[object, list[tuple[str, str, str]], int]:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        opted_out = session.scalar(select(Lead.opted_out_at).where(Lead.id == lead_id))
        suppressions = [tuple(r) for r in session.execute(
            select(Suppression.channel, Suppression.address, Suppression.reason))]
        audits = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == AUDIT_ACTION)) or 0
    return opted_out, suppressions, audits  # type: ignore[return-value]


def test_unsubscribe_opts_out_suppresses_stops_and_a_replay_changes_nothing(db: Database) -> None:
    tenant_id = make_tenant(db)
    lead_id = make_email_lead(db, tenant_id)
    campaign_id = make_campaign(db, tenant_id, channel="email")
    enrolment = enrol(db, tenant_id, campaign_id, lead_id, status="pending")
    token = _sign(db.settings, tenant_id, lead_id)
    assert preview_unsubscribe(db, token).already_unsubscribed is False

    first = unsubscribe(db, token, now=NOW)
    assert first.changed and first.tenant_name == "Acme" and first.masked_address == "a***@analytical.example"
    opted_out, suppressions, audits = _state(db, tenant_id, lead_id)
    assert opted_out is not None
    assert suppressions == [("email", "ada@analytical.example", "unsubscribe")]
    assert audits == 1
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        row = session.get(CampaignLead, enrolment)
        assert row is not None and (row.status, row.status_reason) == ("skipped", "opted out")

    again = unsubscribe(db, token, now=NOW)
    assert again.changed is False
    assert _state(db, tenant_id, lead_id) == (opted_out, suppressions, 1)
    assert preview_unsubscribe(db, token).already_unsubscribed is True


def test_a_token_for_a_lead_of_another_tenant_changes_nothing(db: Database) -> None:
    acme, globex = make_tenant(db, "Acme"), make_tenant(db, "Globex")
    lead_id = make_email_lead(db, acme)
    # Signed by this deployment, but the lead is not Globex's: refused as if forged.
    token = _sign(db.settings, globex, lead_id)
    with pytest.raises(InvalidToken):
        unsubscribe(db, token, now=NOW)
    with pytest.raises(InvalidToken):
        preview_unsubscribe(db, token)
    assert _state(db, acme, lead_id) == (None, [], 0)
    assert _state(db, globex, lead_id)[1:] == ([], 0)


def test_a_forged_token_changes_nothing(db: Database) -> None:
    tenant_id = make_tenant(db)
    lead_id = make_email_lead(db, tenant_id)
    token = _sign(db.settings, tenant_id, lead_id)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(InvalidToken):
        unsubscribe(db, forged, now=NOW)
    assert _state(db, tenant_id, lead_id) == (None, [], 0)


def test_a_token_for_an_unknown_tenant_is_refused(db: Database) -> None:
    with pytest.raises(InvalidToken):
        unsubscribe(db, _sign(db.settings, 999, None), now=NOW)
