"""One-click unsubscribe through the running service, with the link taken from a real email."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from core.channels.base import OutgoingMessage
from core.channels.smtp_email import SmtpSender
from core.config import Settings
from core.db import Database
from core.inbound.unsubscribe import AUDIT_ACTION, TokenSigner
from core.models import AuditLog, CampaignLead, Lead, Suppression
from tests.api.conftest import ApiServer
from tests.conftest import make_settings
from tests.core.inbound.samples import make_email_lead
from tests.factories import enrol, make_campaign, make_tenant
from tests.support.smtp_capture import CapturedMail, smtp_capture  # noqa: F401

PUBLIC = "https://leads.acme.example"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def settings(database_url: str, smtp_capture: CapturedMail) -> Settings:  # noqa: F811
    return make_settings(
        database_url, public_url=PUBLIC, email_provider="smtp", smtp_host=smtp_capture.host,
        smtp_port=smtp_capture.port, smtp_starttls=False, smtp_from="sales@acme.example",
        smtp_timeout_seconds=10,
    )


def _send(settings: Settings, db: Database, tenant_id: int, lead_id: int, captured: CapturedMail) -> str:
    """Send a campaign email over SMTP; the one-click URL its List-Unsubscribe carries."""
    SmtpSender(settings).send(OutgoingMessage(
        tenant_id=tenant_id, campaign_id=None, channel="email", to_address="ada@analytical.example",
        subject="A quick idea", body="Hi Ada,\n\nA thought.", idempotency_key=f"cl{lead_id}-s0",
        lead_id=lead_id))
    header = str(captured.only()["List-Unsubscribe"])
    found = re.search(r"<(https://[^>]+)>", header)
    assert found is not None, header
    return found.group(1)


def _local(url: str, base: str) -> str:
    """The public URL as the local test server serves it."""
    assert url.startswith(PUBLIC + "/api/unsubscribe/")
    return base + url.removeprefix(PUBLIC)


def _state(db: Database, tenant_id: int, lead_id: int) -> tuple[bool, list[tuple[str, str]], int]:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        opted_out = session.scalar(select(Lead.opted_out_at).where(Lead.id == lead_id)) is not None
        suppressed = [tuple(r) for r in session.execute(select(Suppression.address, Suppression.reason))]
        audits = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == AUDIT_ACTION))
    return opted_out, suppressed, int(audits or 0)  # type: ignore[return-value]


def test_every_email_carries_the_one_click_headers(
    settings: Settings, db: Database, smtp_capture: CapturedMail  # noqa: F811
) -> None:
    tenant_id = make_tenant(db)
    lead_id = make_email_lead(db, tenant_id)
    url = _send(settings, db, tenant_id, lead_id, smtp_capture)
    email = smtp_capture.only()
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<mailto:sales@acme.example?subject=unsubscribe>" in str(email["List-Unsubscribe"])
    token = url.rsplit("/", 1)[1]
    recipient = TokenSigner(settings).read(token)
    assert (recipient.tenant_id, recipient.lead_id, recipient.address) == (
        tenant_id, lead_id, "ada@analytical.example")


def test_one_post_unsubscribes_and_a_replay_changes_nothing(
    settings: Settings, db: Database, api_server: ApiServer, smtp_capture: CapturedMail  # noqa: F811
) -> None:
    tenant_id = make_tenant(db)
    lead_id = make_email_lead(db, tenant_id)
    campaign_id = make_campaign(db, tenant_id, channel="email")
    enrolment = enrol(db, tenant_id, campaign_id, lead_id, status="deferred")
    link = _local(_send(settings, db, tenant_id, lead_id, smtp_capture), api_server(settings, db))

    # As a mail client does it (RFC 8058): a form POST, no cookie, no login.
    first = httpx.post(link, data=ONE_CLICK, timeout=30)
    assert first.status_code == 200 and "You are unsubscribed" in first.text
    assert first.headers["cache-control"] == "no-store"
    after = _state(db, tenant_id, lead_id)
    assert after == (True, [("ada@analytical.example", "unsubscribe")], 1)
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        row = session.get(CampaignLead, enrolment)
        assert row is not None and row.status == "skipped" and row.next_action_at is None

    replay = httpx.post(link, data=ONE_CLICK, timeout=30)
    assert replay.status_code == 200 and "You are unsubscribed" in replay.text
    assert _state(db, tenant_id, lead_id) == after


def test_a_get_shows_a_button_that_posts_and_changes_nothing(
    settings: Settings, db: Database, api_server: ApiServer, smtp_capture: CapturedMail  # noqa: F811
) -> None:
    tenant_id = make_tenant(db, "Acme & <Sons>")
    lead_id = make_email_lead(db, tenant_id)
    link = _local(_send(settings, db, tenant_id, lead_id, smtp_capture), api_server(settings, db))
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200
    assert '<form method="post">' in page.text and "<button" in page.text
    assert "a***@analytical.example" in page.text and "ada@analytical.example" not in page.text
    assert "Acme &amp; &lt;Sons&gt;" in page.text  # the tenant's name is escaped
    assert _state(db, tenant_id, lead_id) == (False, [], 0)
    # The button's POST (the page's own form) unsubscribes; the page then says so.
    assert httpx.post(link, data=ONE_CLICK, timeout=30).status_code == 200
    assert "You are unsubscribed" in httpx.get(link, timeout=30).text


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda token, other: str(other) + token[token.index("."):], id="other-tenant"),
        pytest.param(lambda token, other: token[:-3] + ("abc" if token[-3:] != "abc" else "abd"),
                     id="forged-signature"),
        pytest.param(lambda token, other: "not-a-token", id="garbage"),
    ],
)
def test_forged_and_moved_tokens_answer_404_and_change_nothing(
    settings: Settings, db: Database, api_server: ApiServer, smtp_capture: CapturedMail,  # noqa: F811
    forge: object,
) -> None:
    acme, globex = make_tenant(db, "Acme"), make_tenant(db, "Globex")
    lead_id = make_email_lead(db, acme)
    other_lead = make_email_lead(db, globex)
    link = _local(_send(settings, db, acme, lead_id, smtp_capture), api_server(settings, db))
    base, _, token = link.rpartition("/")
    bad = f"{base}/{forge(token, globex)}"  # type: ignore[operator]
    for response in (httpx.post(bad, data=ONE_CLICK, timeout=30), httpx.get(bad, timeout=30)):
        assert response.status_code == 404 and "not valid" in response.text
    assert _state(db, acme, lead_id) == (False, [], 0)
    assert _state(db, globex, other_lead) == (False, [], 0)
