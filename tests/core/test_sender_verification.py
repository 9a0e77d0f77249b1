"""Email senders are verified (a DNS TXT token or a code sent to the address) before a campaign uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.admin import update_tenant_settings
from core.campaign_runs import pause_campaign, resume_campaign, start_campaign
from core.channels.base import NotSent, OutgoingMessage, SendReceipt
from core.channels.outbox import OutboxSender
from core.db import Database
from core.errors import Conflict, PermissionDenied, ValidationError
from core.models import AuditLog, OutboxMessage, Role
from core.permissions import Actor
from core.sender_verification import (
    DnsLookupFailed,
    DnsPythonResolver,
    check_domain_verification,
    code_in_outbox,
    confirm_address_code,
    email_sender_reason,
    remove_verification,
    send_address_code,
    sender_status,
    start_domain_verification,
)
from tests.conftest import make_settings
from tests.factories import insert_leads, make_actor, make_campaign, make_tenant

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeResolver:
    """TXT records by name, as a zone would publish them; no network."""

    def __init__(self, records: dict[str, list[str]] | None = None, *, fail: bool = False) -> None:
        self.records = records or {}
        self.fail = fail
        self.asked: list[str] = []

    def txt_records(self, name: str) -> list[str]:
        self.asked.append(name)
        if self.fail:
            raise DnsLookupFailed("LifetimeTimeout")
        return self.records.get(name, [])


class RecordingSender:
    name = "smtp"

    def __init__(self, refuse: str | None = None) -> None:
        self.sent: list[OutgoingMessage] = []
        self.refuse = refuse

    def send(self, message: OutgoingMessage) -> SendReceipt:
        if self.refuse:
            raise NotSent(self.refuse, permanent=True)
        self.sent.append(message)
        return SendReceipt("id-1")

    def was_sent(self, idempotency_key: str, *, tenant_id: int) -> bool | None:
        return None


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db, "Acme"), Role.admin, "acme-admin")


@pytest.fixture
def rival(db: Database) -> Actor:
    return make_actor(db, make_tenant(db, "Rival"), Role.admin, "rival-admin")


def _sender(db: Database, actor: Actor, sender: str) -> None:
    update_tenant_settings(db, actor, {"email_sender": sender})


def _ready_to_send(db: Database, actor: Actor) -> None:
    """What the start's other pre-flight checks ask for: a postal address and a lead to message."""
    update_tenant_settings(db, actor, {"postal_address": "1 Main St, Springfield"})
    insert_leads(db, actor.tenant_id, 1)


def _publish(
    db: Database, actor: Actor, where: str | None = None, extra: list[str] | None = None
) -> FakeResolver:
    status = start_domain_verification(db, actor)
    assert status.dns_value is not None and status.dns_name is not None
    return FakeResolver({where or status.dns_name: [*(extra or []), status.dns_value]})


def _code_from(sender: RecordingSender) -> str:
    [message] = sender.sent[-1:]
    return next(word.strip(".:") for word in message.body.split() if word.strip(".:").isdigit())


def test_without_a_sender_of_its_own_nothing_needs_verifying(db: Database, admin: Actor) -> None:
    status = sender_status(db, admin)
    assert status.sender is None and status.problem is None
    assert email_sender_reason(db, admin.tenant_id, None) is None


def test_a_new_sender_is_unverified_with_instructions(db: Database, admin: Actor) -> None:
    _sender(db, admin, "Acme Sales <Sales@Acme.example>")
    status = sender_status(db, admin)
    assert not status.verified and status.address == "sales@acme.example"
    assert status.dns_name == "_leadflow.acme.example" and status.dns_value is None
    reason = email_sender_reason(db, admin.tenant_id, "Acme Sales <Sales@Acme.example>")
    assert reason and "not verified" in reason and "Admin > Settings" in reason


@pytest.mark.parametrize("at_root", [False, True])
def test_the_dns_token_verifies_the_domain_and_every_address_at_it(
    db: Database, admin: Actor, at_root: bool
) -> None:
    _sender(db, admin, "sales@acme.example")
    resolver = _publish(db, admin, "acme.example" if at_root else None, extra=["v=spf1 -all"])
    status = check_domain_verification(db, admin, resolver=resolver)
    assert status.verified_by == "domain" and status.problem is None
    _sender(db, admin, "Team <TEAM@acme.example>")
    assert sender_status(db, admin).verified_by == "domain"
    assert email_sender_reason(db, admin.tenant_id, "team@ACME.example") is None


@pytest.mark.parametrize(
    "records",
    [
        {},
        {"_leadflow.acme.example": ["leadflow-verification=not-the-token"]},
        {"acme.example": ["v=spf1 include:_spf.example -all"]},
        {"_leadflow.acme.example.evil.example": ["{token}"]},
    ],
)
def test_without_this_tenants_token_the_domain_stays_unverified(
    db: Database, admin: Actor, records: dict[str, list[str]]
) -> None:
    _sender(db, admin, "sales@acme.example")
    token = start_domain_verification(db, admin).dns_value or ""
    resolver = FakeResolver({name: [r.replace("{token}", token) for r in rs] for name, rs in records.items()})
    with pytest.raises(
        ValidationError, match="no TXT record leadflow-verification=.* at _leadflow.acme.example"
    ):
        check_domain_verification(db, admin, resolver=resolver)
    assert not sender_status(db, admin).verified


def test_a_failed_lookup_says_to_try_again(db: Database, admin: Actor) -> None:
    _sender(db, admin, "sales@acme.example")
    start_domain_verification(db, admin)
    with pytest.raises(ValidationError, match="try again in a few minutes"):
        check_domain_verification(db, admin, resolver=FakeResolver(fail=True))


def test_an_internationalised_domain_is_looked_up_in_its_ascii_form(db: Database, admin: Actor) -> None:
    _sender(db, admin, "verkauf@b\u00fccher.example")
    status = start_domain_verification(db, admin)
    assert status.dns_name == "_leadflow.xn--bcher-kva.example"
    resolver = FakeResolver({"_leadflow.xn--bcher-kva.example": [status.dns_value or ""]})
    assert check_domain_verification(db, admin, resolver=resolver).verified


def test_another_tenants_token_does_not_verify(db: Database, admin: Actor, rival: Actor) -> None:
    _sender(db, admin, "sales@acme.example")
    _sender(db, rival, "sales@acme.example")
    published = _publish(db, admin)  # Acme's token is in the zone, not Rival's
    start_domain_verification(db, rival)
    with pytest.raises(ValidationError, match="no TXT record"):
        check_domain_verification(db, rival, resolver=published)


def test_a_domain_belongs_to_the_first_tenant_that_verifies_it(
    db: Database, admin: Actor, rival: Actor
) -> None:
    _sender(db, admin, "sales@acme.example")
    _sender(db, rival, "news@acme.example")
    start_domain_verification(db, rival)
    check_domain_verification(db, admin, resolver=_publish(db, admin))
    # Rival cannot verify it too, nor confirm an address at it, nor pick a sender there again.
    with pytest.raises(Conflict, match="verified as a sender by another tenant"):
        start_domain_verification(db, rival)
    with pytest.raises(Conflict, match="another tenant"):
        send_address_code(db, rival, make_settings("sqlite://"), sender=RecordingSender())
    # Other settings still save with the sender in place; the sender itself is refused anew.
    update_tenant_settings(db, rival, {"email_sender": "news@acme.example", "default_country": "GB"})
    assert email_sender_reason(db, rival.tenant_id, "news@acme.example")
    _sender(db, rival, "")
    with pytest.raises(Conflict, match="another tenant"):
        _sender(db, rival, "Sales <SALES@acme.example>")


def test_two_tenants_checking_at_once_leave_one_holder(
    db: Database, admin: Actor, rival: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sender(db, admin, "sales@acme.example")
    _sender(db, rival, "sales@acme.example")
    both = FakeResolver(
        {
            "_leadflow.acme.example": [
                start_domain_verification(db, admin).dns_value or "",
                start_domain_verification(db, rival).dns_value or "",
            ]
        }
    )
    check_domain_verification(db, admin, resolver=both)
    with pytest.raises(Conflict, match="another tenant"):  # the unique index, past the checks
        check_domain_verification(db, rival, resolver=both)
    assert not sender_status(db, rival).verified


def test_a_code_sent_to_the_address_verifies_that_address_only(db: Database, admin: Actor) -> None:
    _sender(db, admin, "ada@mail.example")
    sender = RecordingSender()
    status = send_address_code(db, admin, make_settings("sqlite://"), sender=sender, now=NOW)
    assert status.code_sent_to == "ada@mail.example" and sender.sent[0].to_address == "ada@mail.example"
    assert sender.sent[0].from_address is None  # from the deployment's address, not the unproven one
    assert confirm_address_code(db, admin, _code_from(sender), now=NOW).verified_by == "address"
    _sender(db, admin, "grace@mail.example")  # another address at the same domain
    assert not sender_status(db, admin).verified


def test_in_development_the_code_lands_in_the_outbox(db: Database, admin: Actor) -> None:
    _sender(db, admin, "ada@mail.example")
    send_address_code(db, admin, make_settings("sqlite://"), sender=OutboxSender(db), now=NOW)
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        body = session.scalars(select(OutboxMessage.body)).one()
    code = next(word.strip(".:") for word in body.split() if word.strip(".:").isdigit())
    assert confirm_address_code(db, admin, code, now=NOW).verified


def test_wrong_expired_and_exhausted_codes_are_refused(db: Database, admin: Actor) -> None:
    _sender(db, admin, "ada@mail.example")
    sender = RecordingSender()
    send_address_code(db, admin, make_settings("sqlite://"), sender=sender, now=NOW)
    code = _code_from(sender)
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    with pytest.raises(ValidationError, match="4 tries left"):
        confirm_address_code(db, admin, wrong, now=NOW)
    with pytest.raises(ValidationError, match="expired"):
        confirm_address_code(db, admin, code, now=NOW + timedelta(hours=25))
    for _ in range(4):
        with pytest.raises(ValidationError):
            confirm_address_code(db, admin, wrong, now=NOW)
    with pytest.raises(ValidationError, match="send a new one"):
        confirm_address_code(db, admin, code, now=NOW)  # five wrong tries void the right one
    with pytest.raises(Conflict, match="wait"):
        send_address_code(db, admin, make_settings("sqlite://"), sender=sender, now=NOW)
    send_address_code(db, admin, make_settings("sqlite://"), sender=sender, now=NOW + timedelta(minutes=2))
    assert confirm_address_code(db, admin, _code_from(sender), now=NOW + timedelta(minutes=3)).verified


def test_a_code_that_cannot_be_sent_says_why(db: Database, admin: Actor) -> None:
    _sender(db, admin, "ada@mail.example")
    with pytest.raises(ValidationError, match="could not be sent to ada@mail.example: mailbox unavailable"):
        send_address_code(
            db, admin, make_settings("sqlite://"), sender=RecordingSender("mailbox unavailable")
        )


def test_the_domain_owner_outranks_an_address_another_tenant_confirmed(
    db: Database, admin: Actor, rival: Actor
) -> None:
    _sender(db, rival, "bob@acme.example")
    sender = RecordingSender()
    send_address_code(db, rival, make_settings("sqlite://"), sender=sender, now=NOW)
    assert confirm_address_code(db, rival, _code_from(sender), now=NOW).verified
    _sender(db, admin, "sales@acme.example")
    check_domain_verification(db, admin, resolver=_publish(db, admin))
    assert not sender_status(db, rival).verified
    with db.session(tenant_id=rival.tenant_id, read_only=True) as session:
        actions = session.scalars(select(AuditLog.action)).all()
    assert "revoke_verification" in actions


def test_a_removed_verification_frees_the_domain(db: Database, admin: Actor, rival: Actor) -> None:
    _sender(db, admin, "sales@acme.example")
    check_domain_verification(db, admin, resolver=_publish(db, admin))
    assert not remove_verification(db, admin).verified
    _sender(db, rival, "sales@acme.example")
    assert check_domain_verification(db, rival, resolver=_publish(db, rival)).verified


def test_only_admins_verify(db: Database, admin: Actor) -> None:
    manager = make_actor(db, admin.tenant_id, Role.manager, "acme-manager")
    for call in (sender_status, start_domain_verification, remove_verification):
        with pytest.raises(PermissionDenied):
            call(db, manager)


# -- campaigns: refused before they start -------------------------------------------------------


def test_an_email_campaign_cannot_start_or_resume_until_the_sender_is_verified(
    db: Database, admin: Actor
) -> None:
    owner = make_actor(db, admin.tenant_id, Role.owner, "acme-owner")
    _sender(db, admin, "sales@acme.example")
    _ready_to_send(db, admin)
    campaign = make_campaign(db, admin.tenant_id, "Mail", channel="email", status="draft")
    with pytest.raises(Conflict, match="not verified.*Admin > Settings"):
        start_campaign(db, owner, campaign)
    check_domain_verification(db, admin, resolver=_publish(db, admin))
    assert start_campaign(db, owner, campaign).status == "running"
    pause_campaign(db, owner, campaign)
    _sender(db, admin, "sales@other.example")
    with pytest.raises(Conflict, match="sales@other.example is not verified"):
        resume_campaign(db, owner, campaign)


@pytest.mark.parametrize(("channel", "sender"), [("sms", "sales@acme.example"), ("email", "")])
def test_sms_campaigns_and_the_deployments_sender_need_no_verification(
    db: Database, admin: Actor, channel: str, sender: str
) -> None:
    owner = make_actor(db, admin.tenant_id, Role.owner, "acme-owner")
    _sender(db, admin, sender)
    _ready_to_send(db, admin)
    campaign = make_campaign(db, admin.tenant_id, "Any", channel=channel, status="draft")
    assert start_campaign(db, owner, campaign).status == "running"


def test_a_code_read_from_the_outbox_stops_counting_once_email_is_sent_for_real(
    db: Database, admin: Actor
) -> None:
    _sender(db, admin, "ceo@bank.example")
    send_address_code(db, admin, make_settings("sqlite://"), sender=OutboxSender(db), now=NOW)
    body = code_in_outbox(db, admin) or ""
    code = next(word.strip(".:") for word in body.split() if word.strip(".:").isdigit())
    assert confirm_address_code(db, admin, code, now=NOW).verified
    assert email_sender_reason(db, admin.tenant_id, "ceo@bank.example", provider="outbox") is None
    reason = email_sender_reason(db, admin.tenant_id, "ceo@bank.example", provider="smtp")
    assert reason and "through the outbox" in reason and "send a new code" in reason
    # A code sent through the real provider counts again.
    sender = RecordingSender()
    remove_verification(db, admin)
    send_address_code(db, admin, make_settings("sqlite://"), sender=sender, now=NOW)
    confirm_address_code(db, admin, _code_from(sender), now=NOW)
    assert email_sender_reason(db, admin.tenant_id, "ceo@bank.example", provider="smtp") is None


def test_the_dnspython_resolver_joins_split_records_and_tells_absence_from_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dns.exception
    import dns.resolver

    class Record:
        def __init__(self, *parts: bytes) -> None:
            self.strings = parts

    answers: dict[str, object] = {
        "_leadflow.acme.example": [Record(b"leadflow-verification=", b"abc123"), Record(b"v=spf1 -all")],
        "gone.example": dns.resolver.NXDOMAIN(),
        "empty.example": dns.resolver.NoAnswer(),
        "slow.example": dns.exception.Timeout(),
    }

    def resolve(name: str, kind: str, lifetime: float) -> object:
        assert kind == "TXT" and lifetime <= 5
        answer = answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(dns.resolver, "resolve", resolve)
    resolver = DnsPythonResolver()
    assert resolver.txt_records("_leadflow.acme.example") == ["leadflow-verification=abc123", "v=spf1 -all"]
    assert resolver.txt_records("gone.example") == [] and resolver.txt_records("empty.example") == []
    with pytest.raises(DnsLookupFailed):
        resolver.txt_records("slow.example")
