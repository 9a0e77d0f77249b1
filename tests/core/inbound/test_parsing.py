"""Delivery reports and replies read from real-shaped emails (no database, no server)."""

from __future__ import annotations

import base64
import quopri
from datetime import UTC, datetime

import pytest

from core.inbound.dsn import DeliveryReport, delivery_report, parse_email
from core.inbound.emails import read_inbound_email, reply_text
from tests.core.inbound.samples import LEAD, SENDER, SENT_ID, mail

NOW = datetime(2026, 5, 7, 12, 0, tzinfo=UTC)


def _report(name: str, **values: str) -> DeliveryReport | None:
    return delivery_report(parse_email(mail(name, **values)))


@pytest.mark.parametrize("name", ["postfix_5.1.1", "gmail_5.1.1"])
def test_a_hard_bounce_names_the_recipient_the_status_and_the_bounced_email(name: str) -> None:
    report = _report(name, recipient="Ada.Gone@Analytical.example")
    assert report is not None and report.standard
    assert report.original_message_id == SENT_ID
    [recipient] = report.recipients
    assert (recipient.address, recipient.action, recipient.status) == (
        "ada.gone@analytical.example", "failed", "5.1.1")
    assert recipient.permanent and not recipient.delayed
    assert "5.1.1" in recipient.diagnostic and not recipient.diagnostic.startswith("smtp;")


def test_a_delay_is_not_permanent_and_its_headers_name_the_email() -> None:
    report = _report("postfix_4.4.1_delayed")
    assert report is not None and report.original_message_id == SENT_ID
    [recipient] = report.recipients
    assert (recipient.action, recipient.status) == ("delayed", "4.4.1")
    assert recipient.delayed and not recipient.permanent
    assert recipient.diagnostic.startswith("connect to mx.analytical.example")


def test_a_plain_text_qmail_bounce_is_read_minimally() -> None:
    report = _report("qmail_failure", recipient="gone@analytical.example")
    assert report is not None and not report.standard
    assert report.original_message_id == SENT_ID
    [recipient] = report.recipients
    assert (recipient.address, recipient.status, recipient.permanent) == (
        "gone@analytical.example", "5.1.1", True)
    assert "no mailbox here" in recipient.diagnostic


@pytest.mark.parametrize(
    "name", ["reply_in_reply_to", "reply_references_only", "reply_sender_only", "out_of_office"])
def test_replies_and_auto_replies_are_not_bounces(name: str) -> None:
    assert _report(name) is None


def test_a_read_receipt_report_is_not_a_bounce() -> None:
    raw = mail("postfix_5.1.1").replace(
        b"report-type=delivery-status", b"report-type=disposition-notification")
    assert delivery_report(parse_email(raw)) is None


def test_a_reply_is_threaded_by_in_reply_to_and_loses_the_quoted_original() -> None:
    email = read_inbound_email(mail("reply_in_reply_to"), now=NOW)
    assert email.message_id == "CAF=reply1.ada@mail.analytical.example"
    assert (email.from_address, email.to_addresses) == (LEAD, (SENDER,))
    assert email.answered_ids == (SENT_ID,)
    assert email.body == "Sounds interesting \u2014 can we talk on Thursday?\n\nAda"
    assert email.subject == "Re: A quick idea for Analytical Engines"
    assert email.received_at == datetime(2026, 5, 4, 13, 12, tzinfo=UTC)


def test_references_are_read_newest_first_and_outlooks_quote_is_cut() -> None:
    email = read_inbound_email(mail("reply_references_only"), now=NOW)
    assert email.answered_ids == (SENT_ID, "older-thread@elsewhere.example")
    assert email.body == "What would it cost for a team of 12?"
    assert "unsubscribe" not in email.body


def test_an_html_only_mail_without_thread_headers() -> None:
    email = read_inbound_email(mail("reply_sender_only"), now=NOW)
    assert email.answered_ids == ()
    assert email.body == "Hello, I got your note last week. Please send me the pricing sheet."


def test_a_date_in_the_future_is_received_now_and_a_missing_id_gets_a_digest() -> None:
    raw = mail("reply_sender_only").replace(b"Wed, 06 May 2026", b"Wed, 06 May 2099")
    raw = raw.replace(b"Message-ID: <fresh-mail.0042@analytical.example>\r\n", b"")
    email = read_inbound_email(raw, now=NOW)
    assert email.received_at == NOW
    assert email.message_id.startswith("sha256:") and len(email.message_id) == 71


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes please.\n\n> quoted\n> more", "Yes please."),
        ("Not now.\n\n-----Original Message-----\nFrom: x", "Not now."),
        ("> only a quote", "> only a quote"),  # nothing new: keep what there is
        ("Call me.\nLe lun. 4 mai 2026, Acme <s@a.example> a écrit :\n> Bonjour", "Call me."),
    ],
)
def test_reply_text(text: str, expected: str) -> None:
    assert reply_text(text) == expected


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_an_encoded_status_part_is_decoded(encoding: str) -> None:
    raw = mail("postfix_5.1.1").decode()
    head = "Content-Type: message/delivery-status\r\n\r\n"
    start = raw.index(head) + len(head)
    end = raw.index("--3F2A81C0042", start)
    status = raw[start:end].encode()
    encoded = (base64.encodebytes(status) if encoding == "base64" else quopri.encodestring(status))
    raw = (raw[: start - 2].replace(head[:-2], head[:-2] + f"Content-Transfer-Encoding: {encoding}\r\n")
           + "\r\n" + encoded.decode().replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n" + raw[end:])
    report = delivery_report(parse_email(raw.encode()))
    assert report is not None
    assert [(r.address, r.status, r.permanent) for r in report.recipients] == [(LEAD, "5.1.1", True)]
