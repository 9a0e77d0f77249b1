"""Replies and bounces read from a real IMAP server (dovecot): threaded, routed, stored once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from imap_tools import AND, MailBoxUnencrypted, MailMessageFlags
from pydantic import SecretStr
from sqlalchemy import func, select
from structlog.testing import capture_logs

from core.config import Settings
from core.db import Database
from core.inbound.bounces import AUDIT_ACTION as BOUNCE_AUDIT
from core.inbound.mailbox import MailboxUnavailable, poll_mailbox
from core.models import (
    AuditLog,
    Campaign,
    CampaignLead,
    InboundMessage,
    Lead,
    Message,
    Suppression,
)
from jobs.runner import Runner
from tests.conftest import make_settings
from tests.core.inbound.samples import LEAD, SENDER, SENT_ID, mail
from tests.support.dovecot import Dovecot, dovecot, dovecot_server  # noqa: F401

NOW = datetime(2026, 5, 7, 12, 0, tzinfo=UTC)
ALTERNATE = "ada.lovelace@home.example"


@pytest.fixture
def settings(database_url: str, dovecot: Dovecot) -> Settings:  # noqa: F811
    return make_settings(database_url, imap_host=dovecot.host, imap_port=dovecot.port,
                         imap_username=dovecot.username, imap_password=dovecot.password,
                         imap_ssl=False, imap_timeout_seconds=10)


@pytest.fixture
def imap(dovecot: Dovecot) -> Iterator[MailBoxUnencrypted]:  # noqa: F811
    """The test's own IMAP session on the mailbox: to deliver mail and look at its flags."""
    with MailBoxUnencrypted(dovecot.host, dovecot.port).login(dovecot.username, dovecot.password) as box:
        yield box


def deliver(imap: MailBoxUnencrypted, *raws: bytes) -> None:
    """Put the emails in the mailbox as a mail server would: IMAP APPEND, unseen."""
    for raw in raws:
        imap.append(raw, "INBOX", flag_set=())


def unseen(imap: MailBoxUnencrypted) -> int:
    imap.client.noop()  # this session sees the flags the poll's session set
    return len(imap.uids(AND(seen=False)))


def mark_all_unseen(imap: MailBoxUnencrypted) -> None:
    imap.flag(imap.uids("ALL"), MailMessageFlags.SEEN, False)


class World:
    """A tenant that sent Ada (and Charles) an email, with the ids the mails refer to."""

    def __init__(self, db: Database, tenant_name: str = "Acme", sender: str = SENDER,
                 lead: str = LEAD, message_id: str = SENT_ID) -> None:
        with db.session(system=True) as session, session.begin():
            from core.models import Tenant

            tenant = Tenant(name=tenant_name, email_sender=sender)
            session.add(tenant)
            session.flush()
            self.tenant_id = tenant.id
        with db.session(tenant_id=self.tenant_id) as session, session.begin():
            lead_row = Lead(first_name="Ada", email=lead,
                            alternates=[{"channel": "email", "value": ALTERNATE, "label": "home"}])
            campaign = Campaign(name="Spring push", channel="email", status="running",
                                system_prompt="Be brief.", model="gpt-4o-mini")
            session.add_all([lead_row, campaign])
            session.flush()
            enrolment = CampaignLead(campaign_id=campaign.id, lead_id=lead_row.id, variant="A",
                                     status="pending", step=1)
            session.add(enrolment)
            session.flush()
            message = Message(campaign_id=campaign.id, campaign_lead_id=enrolment.id, lead_id=lead_row.id,
                              step=0, channel="email", to_address=lead, subject="A quick idea",
                              body="Hi Ada", provider="smtp", provider_message_id=message_id,
                              status="sent", idempotency_key=f"cl{enrolment.id}-s0", sent_at=NOW)
            session.add(message)
            session.flush()
            self.lead_id, self.campaign_id, self.message_id = lead_row.id, campaign.id, message.id
            self.enrolment_id = enrolment.id


def inbound(db: Database) -> list[InboundMessage]:
    with db.session(system=True, read_only=True) as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        session.expunge_all()
        return list(rows)


def count(db: Database, statement: object) -> int:
    with db.session(system=True, read_only=True) as session:
        return int(session.scalar(statement) or 0)  # type: ignore[call-overload]


def test_replies_are_threaded_by_in_reply_to_references_or_sender(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    world = World(db)
    deliver(imap, mail("reply_in_reply_to"), mail("reply_references_only"),
            mail("reply_sender_only"), mail("out_of_office"))
    poll = poll_mailbox(db, settings, now=NOW)
    assert poll.outcomes == {"reply": 4} and poll.failed == 0
    assert unseen(imap) == 0

    rows = {row.provider_message_id: row for row in inbound(db)}
    threaded = ["CAF=reply1.ada@mail.analytical.example", "AM0PR01MB1234.reply2@analytical.example",
                "auto.ooo.777@analytical.example"]
    for message_id in threaded:
        row = rows.pop(message_id)
        assert (row.tenant_id, row.lead_id, row.in_reply_to_message_id, row.campaign_id) == (
            world.tenant_id, world.lead_id, world.message_id, world.campaign_id)
        assert (row.channel, row.provider, row.from_address, row.to_address) == (
            "email", "imap", LEAD, SENDER)
        assert row.processed_at is None  # waiting for the reply agent
    [by_sender] = rows.values()
    # No thread headers: the tenant from its To (the tenant's sender), the lead from its From.
    assert (by_sender.tenant_id, by_sender.lead_id, by_sender.in_reply_to_message_id) == (
        world.tenant_id, world.lead_id, None)
    assert by_sender.campaign_id == world.campaign_id  # the lead's latest outbound email's
    assert by_sender.body == "Hello, I got your note last week. Please send me the pricing sheet."
    # A reply does not stop anything by itself: the reply agent decides.
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        assert session.get(CampaignLead, world.enrolment_id).status == "pending"  # type: ignore[union-attr]


def test_the_same_mail_read_again_is_stored_once(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    World(db)
    # The same reply twice in the mailbox (delivered twice), then everything unseen again, as
    # when a worker stored the messages and died before flagging them.
    deliver(imap, mail("reply_in_reply_to"), mail("reply_in_reply_to"))
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"reply": 1, "repeat": 1}
    before = [(r.id, r.body, r.received_at) for r in inbound(db)]
    mark_all_unseen(imap)
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"repeat": 2}
    assert [(r.id, r.body, r.received_at) for r in inbound(db)] == before
    assert poll_mailbox(db, settings, now=NOW).outcomes == {}  # nothing unseen is left


def test_a_reply_from_another_address_joins_the_conversation_it_answers(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    world = World(db)
    deliver(imap, mail("reply_in_reply_to", lead="assistant@analytical.example"))
    poll_mailbox(db, settings, now=NOW)
    [row] = inbound(db)
    assert (row.from_address, row.lead_id, row.in_reply_to_message_id) == (
        "assistant@analytical.example", world.lead_id, world.message_id)


def test_each_tenant_gets_the_replies_to_its_own_emails(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    acme = World(db)
    # Globex sends from the same shared address: only the thread tells the two apart.
    globex = World(db, "Globex", message_id="globex.0001@acme.example")
    deliver(imap, mail("reply_in_reply_to"),
            mail("reply_references_only", message_id="globex.0001@acme.example"))
    poll_mailbox(db, settings, now=NOW)
    assert {r.provider_message_id: r.tenant_id for r in inbound(db)} == {
        "CAF=reply1.ada@mail.analytical.example": acme.tenant_id,
        "AM0PR01MB1234.reply2@analytical.example": globex.tenant_id,
    }


def test_a_mail_no_tenant_claims_is_read_and_left(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    World(db)
    deliver(imap, mail("reply_sender_only", sender="nobody@elsewhere.example", lead="stranger@else.example"))
    with capture_logs() as logs:
        assert poll_mailbox(db, settings, now=NOW).outcomes == {"unrouted": 1}
    assert inbound(db) == [] and unseen(imap) == 0
    assert any(entry["event"] == "inbound_email_unrouted" for entry in logs)


@pytest.mark.parametrize("sample", ["postfix_5.1.1", "gmail_5.1.1", "qmail_failure"])
def test_a_hard_bounce_suppresses_marks_the_email_and_falls_back(
    db: Database, settings: Settings, imap: MailBoxUnencrypted, sample: str
) -> None:
    world = World(db)
    deliver(imap, mail(sample))
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"bounce": 1}
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        [suppression] = session.scalars(select(Suppression)).all()
        assert (suppression.channel, suppression.address, suppression.reason) == ("email", LEAD, "bounce")
        assert suppression.source is not None and "5.1.1" in suppression.source
        message = session.get(Message, world.message_id)
        assert message is not None and message.status == "undelivered"
        assert message.error is not None and "5.1.1" in message.error
        lead = session.get(Lead, world.lead_id)
        assert lead is not None and lead.email == ALTERNATE  # its next address takes over
        assert {a["value"]: a.get("bounced") for a in lead.alternates} == {LEAD: True}
    assert inbound(db) == []  # a bounce is not a reply for the agent
    audits = count(db, select(func.count(AuditLog.id)).where(AuditLog.action == BOUNCE_AUDIT))
    assert audits == 1

    # Read again (a worker died before flagging it): nothing happens twice.
    mark_all_unseen(imap)
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"report": 1}
    assert count(db, select(func.count(Suppression.id))) == 1
    assert count(db, select(func.count(AuditLog.id)).where(AuditLog.action == BOUNCE_AUDIT)) == 1
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        assert session.scalar(select(Lead.email).where(Lead.id == world.lead_id)) == ALTERNATE


def test_a_delay_is_recorded_on_the_email_and_suppresses_nothing(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    world = World(db)
    deliver(imap, mail("postfix_4.4.1_delayed"))
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"delay": 1}
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        message = session.get(Message, world.message_id)
        assert message is not None and message.status == "sent"
        assert message.error is not None and message.error.startswith("delayed: 4.4.1 connect to")
        assert session.scalar(select(Lead.email).where(Lead.id == world.lead_id)) == LEAD
    assert count(db, select(func.count(Suppression.id))) == 0
    # Then it bounces for good: the permanent failure wins.
    deliver(imap, mail("postfix_5.1.1"))
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"bounce": 1}
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        assert session.scalar(select(Message.status).where(Message.id == world.message_id)) == "undelivered"


def test_a_bounce_for_an_email_leadflow_did_not_send_is_routed_by_its_addresses(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    world = World(db)
    deliver(imap, mail("postfix_5.1.1", message_id="sent-by-hand@acme.example"))
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"bounce": 1}
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        assert session.scalar(select(Suppression.address)) == LEAD
        assert session.scalar(select(Message.status).where(Message.id == world.message_id)) == "sent"


def test_a_plain_text_bounce_counts_only_for_an_email_leadflow_sent(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    world = World(db)
    deliver(imap, mail("qmail_failure", message_id="someone-elses@acme.example"),
            mail("qmail_failure", recipient="charles@analytical.example"))
    assert poll_mailbox(db, settings, now=NOW).outcomes == {"report": 2}
    assert count(db, select(func.count(Suppression.id))) == 0
    with db.session(tenant_id=world.tenant_id, read_only=True) as session:
        assert session.scalar(select(Message.status).where(Message.id == world.message_id)) == "sent"


def test_a_wrong_password_is_said_plainly_without_the_password(settings: Settings, db: Database) -> None:
    wrong = settings.model_copy(update={"imap_password": SecretStr("not-the-password")})
    with pytest.raises(MailboxUnavailable, match="LEADFLOW_IMAP_PASSWORD") as raised:
        poll_mailbox(db, wrong, now=NOW)
    assert "not-the-password" not in str(raised.value)


def test_a_mailbox_that_does_not_answer_is_said_plainly(db: Database, settings: Settings) -> None:
    closed = settings.model_copy(update={"imap_port": 9})  # nothing listens on port 9 here
    with pytest.raises(MailboxUnavailable, match="cannot read the IMAP server 127.0.0.1:9"):
        poll_mailbox(db, closed, now=NOW)


def test_the_runner_polls_the_mailbox_only_when_one_is_configured(
    db: Database, settings: Settings, imap: MailBoxUnencrypted
) -> None:
    World(db)
    deliver(imap, mail("reply_in_reply_to"))
    runner = Runner(db, settings)
    try:
        runner.mailbox_tick()
        assert [r.provider_message_id for r in inbound(db)] == ["CAF=reply1.ada@mail.analytical.example"]
        runner.start()
        job = runner._scheduler.get_job("mailbox")
        assert job is not None and job.trigger.interval.total_seconds() == settings.imap_poll_seconds
    finally:
        runner.stop()
    without = Runner(db, settings.model_copy(update={"imap_host": None}))
    try:
        without.start()
        assert without._scheduler.get_job("mailbox") is None
    finally:
        without.stop()


def test_imap_over_tls_with_the_servers_ca(
    db: Database, settings: Settings, imap: MailBoxUnencrypted, dovecot: Dovecot  # noqa: F811
) -> None:
    World(db)
    deliver(imap, mail("reply_in_reply_to"))
    tls = settings.model_copy(update={"imap_ssl": True, "imap_port": dovecot.tls_port,
                                      "imap_ca_file": dovecot.certificate})
    assert poll_mailbox(db, tls, now=NOW).outcomes == {"reply": 1}


def test_a_certificate_nobody_vouches_for_is_refused(
    db: Database, settings: Settings, imap: MailBoxUnencrypted, dovecot: Dovecot  # noqa: F811
) -> None:
    World(db)
    deliver(imap, mail("reply_in_reply_to"))
    untrusted = settings.model_copy(update={"imap_ssl": True, "imap_port": dovecot.tls_port})
    with pytest.raises(MailboxUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        poll_mailbox(db, untrusted, now=NOW)
    assert inbound(db) == [] and unseen(imap) == 1
