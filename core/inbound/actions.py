"""The reply agent's act: what each class of reply does to the lead and its sequences.

- unsubscribe: the lead is opted out and the address it wrote from suppressed; every sequence ends.
- a class the campaign lists in `reply_stop_classes` ends that campaign's sequence for the lead
  (by default every human answer but an absence);
- out_of_office (unless listed): the next step waits until the day after the return date (a week
  when none is given), nothing ends;
- not_now: a reminder for a person on the date named (in 30 days when none is);
- referral: the named person is proposed as a lead, for a person to add (never imported here);
- interested and question: handed to the person who created the campaign.
Every change of an enrolment goes through core.replies, in one transaction with the audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.compliance.suppression import suppress_address
from core.inbound.agent import ActResult, ReplyContext
from core.inbound.classify import NEEDS_PERSON, Classification, ReplyClass
from core.inbound.store import normalised_email, normalised_phone
from core.models import Campaign, CampaignLead, Channel, Lead, SuppressionReason, User
from core.replies import mark_opted_out, opt_out_in, postpone_sequences_in, stop_sequences_in
from core.tenants import from_local_time, in_zone, tenant_time_zone
from core.text import plural

ABSENCE_WITHOUT_DATE = timedelta(days=7)
REMINDER_WITHOUT_DATE = timedelta(days=30)
REMINDER_CLOCK = time(9, 0)  # a reminder is due at 09:00 on the tenant's clock
# Classes that are no answer from the person: they never mark the lead as having replied.
NOT_AN_ANSWER = frozenset({ReplyClass.out_of_office, ReplyClass.auto_reply})


@dataclass(frozen=True)
class _Enrolled:
    campaign_id: int
    stop_classes: frozenset[str]
    created_by: int | None


def _enrolments(session: Session, lead_id: int) -> list[_Enrolled]:
    rows = session.execute(
        select(Campaign.id, Campaign.reply_stop_classes, Campaign.created_by)
        .join(CampaignLead, CampaignLead.campaign_id == Campaign.id)
        .where(CampaignLead.lead_id == lead_id)
        .order_by(Campaign.id)
    ).all()
    return [_Enrolled(r.id, frozenset(r.reply_stop_classes or ()), r.created_by) for r in rows]


def reply_address(channel: str, raw: str, country: str) -> str | None:
    """The sender's address as leads and suppressions store it (E.164, or a normalised email)."""
    return normalised_phone(raw, country) if channel == Channel.sms.value else normalised_email(raw)


def _suppression_reason(channel: str) -> SuppressionReason:
    return SuppressionReason.stop if channel == Channel.sms.value else SuppressionReason.unsubscribe


def _source(ctx: ReplyContext, found: Classification) -> str:
    return f"reply {ctx.reply.id}: {'; '.join(found.evidence)}"[:255]


def _opt_out(session: Session, ctx: ReplyContext, found: Classification, lead: Lead,
             now: datetime) -> list[str]:
    channel = ctx.reply.channel
    address = reply_address(channel, ctx.reply.from_address, ctx.tenant.default_country)
    address = address or (lead.phone if channel == Channel.sms.value else lead.email)
    actions = []
    if address:
        opt_out_in(session, tenant_id=ctx.tenant.id, lead=lead, channel=channel, address=address,
                   reason=_suppression_reason(channel), source=_source(ctx, found), now=now)
        actions.append(f"opted out; {address} suppressed for {channel}")
    else:
        mark_opted_out(session, tenant_id=ctx.tenant.id, lead=lead, now=now, channel=channel,
                       reason=_suppression_reason(channel))
        actions.append("opted out")
    stopped = stop_sequences_in(session, lead_id=lead.id, now=now, reason="opted out by reply")
    actions.append(f"{plural(stopped, 'sequence')} stopped")
    return actions


def _handover(session: Session, enrolled: list[_Enrolled], campaign_id: int | None) -> int | None:
    """The active user who created the campaign the reply answers (else the lead's latest one)."""
    ordered = sorted(enrolled, key=lambda e: (e.campaign_id != campaign_id, -e.campaign_id))
    for enrolment in ordered:
        if enrolment.created_by is None:
            continue
        if session.scalar(select(User.active).where(User.id == enrolment.created_by)):
            return enrolment.created_by
    return None


def _day_start(day: date, zone: str) -> datetime:
    return from_local_time(day, time(0, 0), zone)


def _act_on_sequences(
    session: Session, ctx: ReplyContext, found: Classification, lead: Lead, enrolled: list[_Enrolled],
    zone: str, now: datetime,
) -> tuple[list[str], dict[str, object]]:
    kind = found.kind
    stopping = [e.campaign_id for e in enrolled if kind.value in e.stop_classes]
    others = [e.campaign_id for e in enrolled if kind.value not in e.stop_classes]
    actions: list[str] = []
    detail: dict[str, object] = {}
    if stopping:
        count = stop_sequences_in(session, lead_id=lead.id, now=now, campaign_ids=stopping,
                                  reason=f"replied ({kind.value}): sequence stopped")
        actions.append(f"{plural(count, 'sequence')} stopped ({kind.value})")
    if kind is ReplyClass.out_of_office and others:
        until = (_day_start(found.day + timedelta(days=1), zone) if found.day
                 else now + ABSENCE_WITHOUT_DATE)
        count = postpone_sequences_in(session, lead_id=lead.id, until=until, campaign_ids=others,
                                      reason=f"out of office: next step after {in_zone(until, zone)}")
        detail["postponed_until"] = until.isoformat()
        actions.append(f"{plural(count, 'next step')} postponed to {in_zone(until, zone)}")
    if kind not in NOT_AN_ANSWER and not others and enrolled:
        lead.replied_at = lead.replied_at or now
    return actions, detail


def act_on_reply(ctx: ReplyContext, found: Classification) -> ActResult:
    """Apply the class's actions in one transaction; what was done comes back in words."""
    assert ctx.db is not None, "act writes: it needs the database"
    now = ctx.now
    zone = tenant_time_zone(ctx.tenant.time_zone, ctx.tenant.default_country)
    kind = found.kind
    detail: dict[str, object] = {}
    assigned: int | None = None
    with ctx.db.session(tenant_id=ctx.tenant.id) as session, session.begin():
        lead = session.get(Lead, ctx.reply.lead_id) if ctx.reply.lead_id else None
        if lead is None:
            actions = ["no lead matches the sender: nothing to stop"]
            if kind is ReplyClass.unsubscribe and (address := reply_address(
                    ctx.reply.channel, ctx.reply.from_address, ctx.tenant.default_country)):
                suppress_address(session, tenant_id=ctx.tenant.id, channel=ctx.reply.channel,
                                 address=address, reason=_suppression_reason(ctx.reply.channel),
                                 source=_source(ctx, found))
                actions = [f"{address} suppressed for {ctx.reply.channel} (no lead matches it)"]
        elif kind is ReplyClass.unsubscribe:
            actions = _opt_out(session, ctx, found, lead, now)
        else:
            enrolled = _enrolments(session, lead.id)
            actions, detail = _act_on_sequences(session, ctx, found, lead, enrolled, zone, now)
            if kind is ReplyClass.not_now:
                remind = (from_local_time(found.day, REMINDER_CLOCK, zone) if found.day
                          else now + REMINDER_WITHOUT_DATE)
                detail["remind_at"] = remind.isoformat()
                actions.append(f"reminder set for {in_zone(remind, zone)}")
            if kind is ReplyClass.referral and found.person is not None:
                detail["referral"] = {"status": "proposed"}
                actions.append(f"{found.person.name or found.person.email or found.person.phone} "
                               "proposed as a new lead")
            if kind in (ReplyClass.interested, ReplyClass.question):
                assigned = _handover(session, enrolled, ctx.reply.campaign_id)
                assignee = None if assigned is None else session.get(User, assigned)
                actions.append("handed to a person" if assignee is None
                               else f"handed to {assignee.name or assignee.username}")
        record_audit(session, tenant_id=ctx.tenant.id, user_id=None, action="reply_agent",
                     entity="inbound_message", entity_id=ctx.reply.id,
                     details={"class": kind.value, "actions": actions})
    return ActResult(actions=actions, detail=detail, handled=kind not in NEEDS_PERSON,
                     assigned_user_id=assigned)

