"""The Inbox: every role reads the conversations; managers and up answer, assign, close and add referrals."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from core.db import Database
from core.models import InboundMessage, Lead, Message, OutboxMessage, Role
from tests.core.inbound.conftest import Replies, seed_replies
from tests.factories import make_actor
from tests.jobs.conftest import zone_at_midday
from tests.pages.conftest import PageFactory
from tests.pages.markdown_checks import DIRECTIVE, IMAGE, LATEX, assert_shown_escaped

PAGE = "pages/inbox.py"


@pytest.fixture
def replies(db: Database) -> Replies:
    # The lead lives where it is midday now, so a person's answer is inside its send window.
    seeded = seed_replies(db, lead_time_zone=zone_at_midday())
    seeded.receive("How much does it cost?")
    seeded.run()
    return seeded


def _text(app: AppTest) -> str:
    parts = [*app.markdown, *app.caption, *app.text, *app.info]
    return "\n".join(str(p.value) for p in parts)


def _reply(db: Database, replies: Replies) -> InboundMessage:
    with db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        row = session.scalar(select(InboundMessage).order_by(InboundMessage.id.desc()).limit(1))
        assert row is not None
        return row


def test_an_analyst_reads_the_conversation_but_acts_on_nothing(open_page: PageFactory, db: Database,
                                                                replies: Replies) -> None:
    app = open_page(PAGE, make_actor(db, replies.tenant_id, Role.analyst, "ann"))
    assert not app.exception and not app.error
    shown = _text(app)
    assert "Hi Ada, quick idea?" in shown and "How much does it cost?" in shown  # both directions
    assert "**Question**" in shown and "Evidence: asks “How much does it cost?”" in shown
    assert "Your role can read the inbox" in shown
    assert not [b for b in app.button if b.label in ("Send answer", "Mark handled", "Add as lead")]
    assert not app.text_area


@pytest.mark.parametrize("role", [Role.manager, Role.admin, Role.owner])
def test_managers_and_up_send_the_suggested_answer(open_page: PageFactory, db: Database, replies: Replies,
                                                    role: Role) -> None:
    actor = make_actor(db, replies.tenant_id, role, f"user-{role.value}")
    app = open_page(PAGE, actor)
    assert not app.exception and not app.error
    reply = _reply(db, replies)
    answer = app.text_area(key=f"inbox_answer_{reply.id}")
    assert answer.value == reply.suggested_reply
    answer.set_value("Hi Ada, it starts at $99 a month. Shall we talk Thursday?")
    app.button(key=f"inbox_send_{reply.id}").click().run()
    assert not app.exception and not app.error
    assert "Answer sent to Ada Lovelace" in app.success[0].value
    handled = _reply(db, replies)
    assert (handled.handled_by_user_id, handled.handled_at is not None) == (actor.user_id, True)
    with db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        sent = session.execute(select(Message.step, Message.status, Message.body, Message.to_address)
                               .where(Message.idempotency_key == f"answer-in{reply.id}")).one()
        assert session.scalar(select(func.count(OutboxMessage.id))) == 1
    text = "Hi Ada, it starts at $99 a month. Shall we talk Thursday?"
    assert tuple(sent) == (-1, "sent", text, "+12125550101")
    # Handled: it left the default view (waiting for a person).
    assert "No replies match these filters" in app.info[0].value


def test_an_answer_the_guard_refuses_is_not_sent(open_page: PageFactory, db: Database,
                                                 replies: Replies) -> None:
    app = open_page(PAGE, make_actor(db, replies.tenant_id, Role.manager, "mia"))
    reply = _reply(db, replies)
    app.text_area(key=f"inbox_answer_{reply.id}").set_value(
        "Call me on +1 415 555 0199 or see http://evil.example")
    app.button(key=f"inbox_send_{reply.id}").click().run()
    assert app.error[0].value.startswith("The answer was not sent: the link to evil.example")
    with db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        assert session.scalar(select(func.count(Message.id)).where(Message.step == -1)) == 0
    assert _reply(db, replies).handled_at is None


def test_mark_handled_assign_and_filter(open_page: PageFactory, db: Database, replies: Replies) -> None:
    manager = make_actor(db, replies.tenant_id, Role.manager, "mia")
    app = open_page(PAGE, manager)
    reply = _reply(db, replies)
    app.selectbox(key=f"inbox_assign_{reply.id}").set_value(manager.user_id).run()
    assert "Assigned to Mia" in app.success[0].value
    assert _reply(db, replies).assigned_user_id == manager.user_id
    app.button(key=f"inbox_handled_{reply.id}").click().run()
    assert _reply(db, replies).handled_by_user_id == manager.user_id
    app.selectbox(key="inbox_handled").set_value("Handled").run()
    assert "handled by Mia" in _text(app)
    app.selectbox(key="inbox_class").set_value("interested").run()
    assert "No replies match these filters" in app.info[0].value


def test_a_referral_is_added_as_a_lead_only_by_the_button(open_page: PageFactory, db: Database,
                                                          replies: Replies) -> None:
    replies.receive("Wrong person. Jane Doe handles marketing here, jane@analytical.example")
    replies.run()
    app = open_page(PAGE, make_actor(db, replies.tenant_id, Role.manager, "mia"))
    assert "Not imported: add them as a lead" in _text(app)
    reply = _reply(db, replies)
    app.button(key=f"inbox_refer_{reply.id}").click().run()
    assert not app.error
    with db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        lead = session.scalar(select(Lead).where(Lead.email == "jane@analytical.example"))
        assert lead is not None and (lead.first_name, lead.last_name) == ("Jane", "Doe")
    assert f"added as lead #{lead.id}" in app.success[0].value


def test_what_leads_write_reaches_the_markdown_escaped(open_page: PageFactory, db: Database,
                                                       replies: Replies) -> None:
    with db.session(tenant_id=replies.tenant_id) as session, session.begin():
        lead = session.get(Lead, replies.lead_id)
        assert lead is not None
        lead.first_name, lead.last_name = IMAGE, LATEX
    replies.receive(f"Not now {DIRECTIVE}, try me in March")
    replies.run()
    app = open_page(PAGE, make_actor(db, replies.tenant_id, Role.manager, "mia"))
    assert_shown_escaped(app, f"{IMAGE} {LATEX}", "“Not now”")
    assert f"Not now {DIRECTIVE}, try me in March" in [t.value for t in app.text]  # as typed
