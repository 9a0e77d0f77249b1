"""The reply agent run by the job: every class's action on the lead, its sequences and the Inbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from core.inbound.inbox import add_referred_lead
from core.inbound.queue import claim_replies
from core.models import CampaignLead, Lead, LLMCall, Suppression, User
from core.tenants import from_local_time
from tests.core.inbound.conftest import LEAD_EMAIL, LEAD_PHONE, NOW, Replies
from tests.support.fake_openai import FakeOpenAI

NEW_YORK = "America/New_York"


def _suppressions(replies: Replies) -> list[tuple[str, str, str]]:
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        return [tuple(r) for r in session.execute(
            select(Suppression.channel, Suppression.address, Suppression.reason)).all()]


def test_a_revocation_in_plain_words_opts_the_lead_out(replies: Replies) -> None:
    inbound = replies.receive("Please stop texting me")
    [done] = replies.run()
    assert done.classification == "unsubscribe"
    reply = replies.reply(inbound)
    assert reply.classification == "unsubscribe"
    assert reply.classification_detail["evidence"] == ["“stop texting”"]
    assert reply.handled_at == NOW and reply.handled_by_user_id is None  # settled by the agent
    assert replies.lead().opted_out_at == NOW
    assert _suppressions(replies) == [("sms", LEAD_PHONE, "stop")]
    enrolment = replies.enrolment()
    assert (enrolment.status, enrolment.next_action_at) == ("sent", None)
    assert enrolment.status_reason == "opted out by reply"


def test_an_email_unsubscribe_suppresses_the_address(replies: Replies) -> None:
    replies.receive("Take me off your list.", channel="email", subject="Re: quick idea",
                    sender=f"Ada <{LEAD_EMAIL.upper()}>")
    replies.run()
    assert _suppressions(replies) == [("email", LEAD_EMAIL, "unsubscribe")]
    assert replies.lead().opted_out_at == NOW


def test_a_stop_from_an_unknown_number_still_suppresses_it(replies: Replies) -> None:
    inbound = replies.receive("STOP", sender="+1 (415) 555-0199")
    replies.run()
    assert replies.reply(inbound).lead_id is None
    assert _suppressions(replies) == [("sms", "+14155550199", "stop")]
    assert replies.enrolment().status == "pending"  # not this lead's number


def test_not_interested_stops_the_sequence_without_opting_out(replies: Replies) -> None:
    inbound = replies.receive("Not interested, thanks")
    replies.run()
    enrolment = replies.enrolment()
    assert (enrolment.status, enrolment.replied_at) == ("sent", NOW)
    assert enrolment.status_reason == "replied (not_interested): sequence stopped"
    lead = replies.lead()
    assert (lead.replied_at, lead.opted_out_at) == (NOW, None)
    assert _suppressions(replies) == []
    assert replies.reply(inbound).handled_at == NOW


def test_out_of_office_postpones_the_next_step_past_the_return_date(replies: Replies) -> None:
    inbound = replies.receive("I am out of the office until November 30 with limited access to email.")
    replies.run()
    until = from_local_time(date(2026, 12, 1), time(0, 0), NEW_YORK)
    enrolment = replies.enrolment()
    assert (enrolment.status, enrolment.next_action_at, enrolment.replied_at) == ("pending", until, None)
    reply = replies.reply(inbound)
    assert reply.classification == "out_of_office"
    assert reply.classification_detail["date"] == "2026-11-30"
    assert reply.classification_detail["postponed_until"] == until.isoformat()
    assert reply.handled_at == NOW
    assert replies.lead().replied_at is None  # an absence notice is no answer


def test_out_of_office_without_a_date_waits_a_week_and_never_brings_a_step_forward(replies: Replies) -> None:
    _, later = replies.campaign("Autumn", step=1)
    with replies.db.session(tenant_id=replies.tenant_id) as session, session.begin():
        row = session.get(CampaignLead, later)
        assert row is not None
        row.next_action_at = NOW + timedelta(days=20)
    replies.receive("I'm on vacation and will be back soon.")
    replies.run()
    assert replies.enrolment().next_action_at == NOW + timedelta(days=7)
    assert replies.enrolment(later).next_action_at == NOW + timedelta(days=20)


def test_not_now_sets_a_reminder_for_a_person(replies: Replies) -> None:
    inbound = replies.receive("Not right now, try me again in January")
    replies.run()
    reply = replies.reply(inbound)
    assert reply.classification == "not_now"
    remind = from_local_time(date(2027, 1, 1), time(9, 0), NEW_YORK)
    assert reply.classification_detail["remind_at"] == remind.isoformat()
    assert reply.handled_at is None  # waits in the Inbox
    assert replies.enrolment().status == "sent"  # the automatic sequence stops


def test_not_now_without_a_date_reminds_in_thirty_days(replies: Replies) -> None:
    inbound = replies.receive("Bad time, maybe later")
    replies.run()
    detail = replies.reply(inbound).classification_detail
    assert datetime.fromisoformat(detail["remind_at"]) == NOW + timedelta(days=30)


def test_interested_is_handed_to_a_person_with_a_grounded_suggestion(replies: Replies) -> None:
    inbound = replies.receive("Sounds great, let's set up a call")
    replies.run()
    reply = replies.reply(inbound)
    assert reply.classification == "interested"
    assert reply.handled_at is None
    assert reply.assigned_user_id == replies.manager.user_id  # who created the campaign
    with replies.db.session(system=True, read_only=True) as session:
        manager = session.get(User, replies.manager.user_id)
        assert manager is not None
        said = f"handed to {manager.name or manager.username}"
    assert said in reply.classification_detail["actions"]  # a name a person knows, not an id
    assert replies.enrolment().status == "sent"
    assert reply.suggested_reply is not None
    assert reply.suggested_reply.startswith("Hi Ada, thanks for getting back to me!")
    assert "Teams using Leadflow book 30% more meetings." in reply.suggested_reply
    assert {"fact": "Teams using Leadflow book 30% more meetings", "source": "playbook"} in \
        reply.classification_detail["facts_used"]


def test_a_question_gets_a_suggested_answer(replies: Replies) -> None:
    inbound = replies.receive("How much does it cost?")
    replies.run()
    reply = replies.reply(inbound)
    assert reply.classification == "question"
    assert reply.suggested_reply and reply.suggested_reply.startswith("Hi Ada, thanks for your question.")
    assert reply.handled_at is None


def test_an_email_suggestion_carries_the_unsubscribe_line_and_postal_address(replies: Replies) -> None:
    inbound = replies.receive("Interested! Tell me more", channel="email", subject="Re: quick idea")
    replies.run()
    suggestion = replies.reply(inbound).suggested_reply or ""
    assert "reply 'unsubscribe'" in suggestion and "Acme Inc, 1 Main St, Springfield" in suggestion


def test_a_referral_is_proposed_never_imported_until_a_person_adds_it(replies: Replies) -> None:
    inbound = replies.receive("I'm not the right person - talk to Maria Lopez (maria@analytical.example)")
    replies.run()
    reply = replies.reply(inbound)
    assert reply.classification == "referral"
    assert reply.classification_detail["person"] == {"name": "Maria Lopez",
                                                     "email": "maria@analytical.example"}
    assert reply.classification_detail["referral"] == {"status": "proposed"}
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        assert session.scalar(select(Lead.id).where(Lead.email == "maria@analytical.example")) is None
    lead_id = add_referred_lead(replies.db, replies.manager, inbound)
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        added = session.get(Lead, lead_id)
        assert added is not None
        assert (added.first_name, added.last_name, added.company) == ("Maria", "Lopez", "Analytical Engines")
        assert added.notes == f"Referred by Ada Lovelace (reply {inbound})"
    assert replies.reply(inbound).classification_detail["referral"] == {"status": "added", "lead_id": lead_id}


def test_an_auto_reply_changes_nothing(replies: Replies) -> None:
    inbound = replies.receive("Thank you for your message. This is an automated response.")
    replies.run()
    enrolment = replies.enrolment()
    assert (enrolment.status, enrolment.next_action_at) == ("pending", NOW + timedelta(days=2))
    assert replies.reply(inbound).handled_at == NOW


def test_the_campaign_chooses_which_classes_stop_its_sequence(replies: Replies) -> None:
    _, keeps_going = replies.campaign("Newsletter", stop_classes=[])
    replies.receive("Sounds good, tell me more")
    replies.run()
    assert replies.enrolment().status == "sent"
    assert replies.enrolment(keeps_going).status == "pending"
    assert replies.lead().replied_at is None  # not every sequence stopped


def test_a_campaign_may_stop_on_an_absence_instead_of_waiting(replies: Replies) -> None:
    _, stops = replies.campaign("Strict", stop_classes=["out_of_office"])
    replies.receive("Out of office until December 3.")
    replies.run()
    assert replies.enrolment(stops).status == "sent"
    assert replies.enrolment().status == "pending"  # the default campaign waits instead


def test_every_reply_is_processed_once(replies: Replies) -> None:
    first, second = replies.receive("Not interested"), replies.receive("ok")
    assert claim_replies(replies.db, now=NOW, limit=1, lease_seconds=120) == [first]
    assert claim_replies(replies.db, now=NOW, limit=5, lease_seconds=120) == [second]
    assert claim_replies(replies.db, now=NOW, limit=5, lease_seconds=120) == []
    # A worker that died with its claims: they are claimed again once a lease has passed.
    later = NOW + timedelta(seconds=121)
    assert sorted(claim_replies(replies.db, now=later, limit=5, lease_seconds=120)) == [first, second]


def test_a_finished_reply_is_never_claimed_again(replies: Replies) -> None:
    inbound = replies.receive("Not interested")
    assert [d.id for d in replies.run()] == [inbound]
    assert replies.run() == []
    assert claim_replies(replies.db, now=NOW + timedelta(days=1), limit=5, lease_seconds=120) == []


# -- the model path, against the local OpenAI-compatible server ----------------------------------


SUGGESTION = "Hi Ada, glad to hear it. Teams using Leadflow book 30% more meetings. Does Thursday work?"


def _model_answers(*answers: str) -> Callable[[dict[str, Any]], str]:
    """The server answers the classification with `answers` in turn, a suggestion with a plain text."""
    queue = list(answers)

    def completion(request: dict[str, Any]) -> str:
        system = str(request["messages"][0]["content"])
        if "TASK: classify-reply" in system:
            return queue.pop(0)
        return SUGGESTION

    return completion


def _openai(replies: Replies, server: FakeOpenAI) -> Any:
    return replies.runtime(llm_provider="openai", openai_api_key="sk-test",
                           openai_base_url=server.base_url, llm_max_retries=0)


def _llm_nodes(replies: Replies) -> list[tuple[str, str, int | None]]:
    with replies.db.session(tenant_id=replies.tenant_id, read_only=True) as session:
        return [tuple(r) for r in session.execute(
            select(LLMCall.node, LLMCall.provider, LLMCall.campaign_id).order_by(LLMCall.id)).all()]


def test_a_configured_model_classifies_and_suggests_with_its_calls_recorded(replies: Replies) -> None:
    answer = ('{"class": "referral", "evidence": "ask Kim", "date": null, '
              '"person": {"name": "Kim Lee", "email": "kim@analytical.example", "phone": null}}')
    second = '{"class": "interested", "evidence": "love to"}'
    with FakeOpenAI(completion=_model_answers(answer, second)) as server:
        runtime = _openai(replies, server)
        referral = replies.receive("Hmm, Kim might be the one for this")
        interested = replies.receive("I'd love to hear more")
        replies.run(runtime)
    detail = replies.reply(referral).classification_detail
    assert (replies.reply(referral).classification, detail["source"]) == ("referral", "model")
    assert detail["person"] == {"name": "Kim Lee", "email": "kim@analytical.example"}
    suggestion = replies.reply(interested).suggested_reply
    assert suggestion == SUGGESTION
    assert _llm_nodes(replies) == [("reply_classify", "openai", replies.campaign_id),
                                   ("reply_classify", "openai", replies.campaign_id),
                                   ("reply_suggest", "openai", replies.campaign_id)]


def test_a_model_never_reads_an_opt_out_away(replies: Replies) -> None:
    with FakeOpenAI(completion=_model_answers('{"class": "interested", "evidence": "me"}')) as server:
        inbound = replies.receive("don't text me again")
        replies.run(_openai(replies, server))
    reply = replies.reply(inbound)
    assert reply.classification == "unsubscribe"
    assert reply.classification_detail["model_class"] == "interested"
    assert replies.lead().opted_out_at == NOW


def test_the_rules_decide_when_the_model_fails_or_talks_nonsense(replies: Replies) -> None:
    with FakeOpenAI(completion=_model_answers("I think they like it!")) as server:
        nonsense = replies.receive("Not interested")
        replies.run(_openai(replies, server))
        server.fail_next("500")
        failed = replies.receive("How much is it?")
        server.completion = _model_answers('{"class": "question"}')
        replies.run(_openai(replies, server))
    assert replies.reply(nonsense).classification == "not_interested"
    detail = replies.reply(nonsense).classification_detail
    assert detail["model_error"] == "the model's answer was not a class"
    assert replies.reply(failed).classification == "question"
    assert "model_error" in replies.reply(failed).classification_detail


def test_a_wrong_person_without_a_name_stops_the_sequence_and_is_settled(replies: Replies) -> None:
    inbound = replies.receive("Wrong number, sorry")
    replies.run()
    reply = replies.reply(inbound)
    assert (reply.classification, reply.handled_at) == ("wrong_person", NOW)
    assert replies.enrolment().status == "sent"


def test_a_question_from_a_lead_no_campaign_messaged_gets_no_suggestion(replies: Replies) -> None:
    with replies.db.session(tenant_id=replies.tenant_id) as session, session.begin():
        session.add(Lead(first_name="Bo", phone="+12125550177"))
    inbound = replies.receive("What is this about?", sender="+12125550177")
    replies.run()
    reply = replies.reply(inbound)
    assert (reply.classification, reply.campaign_id, reply.suggested_reply) == ("question", None, None)
    assert reply.classification_detail["suggestion"] == (
        "no answer suggested: the reply matches no campaign's lead")
    assert reply.assigned_user_id is None and reply.handled_at is None  # waits for anyone
