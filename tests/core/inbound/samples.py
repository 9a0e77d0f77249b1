"""Real-shaped emails for the inbound tests: RFC 5322 files in mails/, filled in per test."""

from __future__ import annotations

from pathlib import Path
from string import Template

from core.db import Database
from core.models import Lead

MAILS = Path(__file__).parent / "mails"
SENDER = "sales@acme.example"
LEAD = "ada@analytical.example"
SENT_ID = "20260504120004.cl7-s0.1@acme.example"


def mail(name: str, *, sender: str = SENDER, lead: str = LEAD, recipient: str = LEAD,
         message_id: str = SENT_ID) -> bytes:
    """The sample `name`.eml with its placeholders filled, with CRLF line ends as on the wire."""
    text = Template((MAILS / f"{name}.eml").read_text()).substitute(
        sender=sender, sender_domain=sender.rpartition("@")[2], lead=lead, recipient=recipient,
        message_id=message_id,
    )
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def make_email_lead(db: Database, tenant_id: int, email: str = LEAD) -> int:
    """A lead with only an email: the one the samples' mails come from or bounce for."""
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ada", email=email)
        session.add(lead)
        session.flush()
        return lead.id
