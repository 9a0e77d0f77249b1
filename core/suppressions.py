"""Suppression lists: addresses that must never be messaged, imported from files or added by hand.

A suppression is per channel: an E.164 phone for SMS, a normalised email for email. The
pipeline and the enrolment ask `is_suppressed` / `suppressed_addresses`, or filter in SQL with
`lead_not_suppressed(channel)`; a lead opted out by hand is also suppressed on both its
addresses, so the opt-out outlives the lead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.leads.fallback import fall_back_from_bounces
from core.leads.importer import tenant_country
from core.leads.mapping import field_for_header
from core.leads.normalise import normalise_email
from core.leads.phones import PhoneNormaliser
from core.leads.readers import RawTable, ReadLimits, read_table
from core.models import Channel, Lead, Suppression, SuppressionReason
from core.permissions import Actor, Permission

LOOKUP_CHUNK = 2_000


@dataclass(frozen=True)
class SuppressionImportSummary:
    rows: int
    added: int
    already: int
    rejected: int
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "added": self.added, "already": self.already,
                "rejected": self.rejected}


def _channel(channel: str | Channel) -> Channel:
    try:
        return Channel(channel)
    except ValueError:
        raise ValidationError(f"channel '{channel}' is not known; use sms or email") from None


def _reason(reason: str | SuppressionReason) -> SuppressionReason:
    try:
        return SuppressionReason(reason)
    except ValueError:
        raise ValidationError(
            f"reason '{reason}' is not known; use stop, unsubscribe, bounce or manual"
        ) from None


def is_suppressed(session: Session, channel: str | Channel, address: str | None) -> bool:
    """True when the address (E.164 phone or normalised email) is suppressed on the channel."""
    if not address:
        return False
    found = session.scalar(
        select(Suppression.id).where(
            Suppression.channel == _channel(channel).value, Suppression.address == address
        ).limit(1)
    )
    return found is not None


def suppressed_addresses(
    session: Session, channel: str | Channel, addresses: Iterable[str | None]
) -> set[str]:
    """The subset of the addresses that is suppressed on the channel, a chunk per query."""
    wanted = sorted({a for a in addresses if a})
    found: set[str] = set()
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        found.update(
            session.scalars(
                select(Suppression.address).where(
                    Suppression.channel == _channel(channel).value, Suppression.address.in_(chunk)
                )
            )
        )
    return found


def lead_not_suppressed(channel: str | Channel) -> ColumnElement[bool]:
    """A WHERE clause on Lead: not opted out and its address for the channel not suppressed."""
    kind = _channel(channel)
    address = Lead.phone if kind is Channel.sms else Lead.email
    return and_(
        Lead.opted_out_at.is_(None),
        address.is_not(None),
        ~exists().where(
            Suppression.tenant_id == Lead.tenant_id,
            Suppression.channel == kind.value,
            Suppression.address == address,
        ),
    )


def add_suppressions_in(
    session: Session,
    tenant_id: int,
    channel: Channel,
    addresses: Sequence[str],
    reason: SuppressionReason,
    source: str | None,
) -> int:
    """Suppress the addresses not yet suppressed (inside the caller's transaction); returns how many."""
    return len(suppress_in(session, tenant_id, channel, addresses, reason, source))


def suppress_in(
    session: Session,
    tenant_id: int,
    channel: Channel,
    addresses: Sequence[str],
    reason: SuppressionReason,
    source: str | None,
) -> list[int]:
    """Suppress the addresses not yet suppressed; the ids of the suppressions it added (an undo
    removes exactly those)."""
    present = suppressed_addresses(session, channel, addresses)
    new = sorted(set(addresses) - present)
    now = datetime.now(UTC)
    ids: list[int] = []
    for start in range(0, len(new), LOOKUP_CHUNK):
        ids.extend(
            session.scalars(
                insert(Suppression).returning(Suppression.id),
                [{"tenant_id": tenant_id, "channel": channel.value, "address": a,
                  "reason": reason.value, "source": (source or "")[:255] or None, "created_at": now}
                 for a in new[start : start + LOOKUP_CHUNK]],
            )
        )
    return ids


def _address_column(table: RawTable, channel: Channel, normalise: Any) -> str:
    """The column holding the addresses: named so, the only one, or the one most of them parse in."""
    wanted = "phone" if channel is Channel.sms else "email"
    for header in table.headers:
        if field_for_header(header) == wanted:
            return header
    if len(table.headers) == 1:
        return table.headers[0]
    sample = table.frame.head(50)
    scores = {h: sum(1 for v in sample[h] if v and normalise(v)[0]) for h in table.headers}
    best = max(scores, key=lambda h: scores[h])
    if scores[best] == 0:
        raise ValidationError(
            f"no column of the file holds {'phone numbers' if channel is Channel.sms else 'emails'}; "
            f"name the column '{wanted}'"
        )
    return best


def import_suppressions(
    db: Database,
    actor: Actor,
    *,
    file_name: str,
    data: bytes,
    channel: str | Channel,
    reason: str | SuppressionReason = SuppressionReason.manual,
) -> SuppressionImportSummary:
    """Import a list of phones or emails to suppress (a STOP export, a do-not-contact list)."""
    actor.require(Permission.manage_suppressions)
    kind, why = _channel(channel), _reason(reason)
    # A list of bare numbers may have no header: read it as one, then put the first row back.
    table = read_table(data, file_name, limits=ReadLimits.from_settings(db.settings))
    if kind is Channel.sms:
        phones = PhoneNormaliser(tenant_country(db, actor))

        def normalise(raw: str) -> tuple[str | None, str | None]:
            result = phones(raw)
            return result.e164, result.error(raw.strip())
    else:
        normalise = normalise_email
    column = _address_column(table, kind, normalise)
    values = table.frame[column].tolist()
    first_row = table.first_row
    if field_for_header(column) is None and normalise(column)[0]:
        values.insert(0, column)  # the "header" was an address: the file has no header row
        first_row -= 1
    addresses: list[str] = []
    rejects: list[dict[str, Any]] = []
    rows = 0
    for offset, raw in enumerate(values):
        if not raw.strip():
            continue
        rows += 1
        address, problem = normalise(raw)
        if address:
            addresses.append(address)
        else:
            rejects.append({"row": first_row + offset, "reason": problem or "empty"})
    unique = sorted(set(addresses))
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        added = add_suppressions_in(session, actor.tenant_id, kind, unique, why,
                                    f"{file_name} ({hashlib.sha256(data).hexdigest()[:12]})")
        if why is SuppressionReason.bounce:
            # A bounce is the address's, not the person's: the lead's next alternate takes over.
            fall_back_from_bounces(session, tenant_id=actor.tenant_id, channel=kind, bounced=unique,
                                   user_id=actor.user_id)
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="suppressions.import", entity="suppression",
                     details={"file_name": file_name, "channel": kind.value, "added": added,
                              "rejected": len(rejects)})
    return SuppressionImportSummary(rows=rows, added=added, already=len(addresses) - added,
                                    rejected=len(rejects), rejects=rejects)


@dataclass(frozen=True)
class SuppressionView:
    id: int
    channel: str
    address: str
    reason: str
    source: str | None
    created_at: datetime


@dataclass(frozen=True)
class SuppressionPage:
    rows: list[SuppressionView]
    total: int
    page: int
    pages: int


def _conditions(channel: str | None, search: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if channel:
        conditions.append(Suppression.channel == _channel(channel).value)
    if search.strip():
        conditions.append(Suppression.address.contains(search.strip().lower(), autoescape=True))
    return conditions


@dataclass(frozen=True)
class SuppressionSlice:
    rows: list[SuppressionView]
    more: bool  # rows after the last one match too


def suppressions_after(
    db: Database,
    actor: Actor,
    *,
    channel: str | None = None,
    search: str = "",
    before_id: int | None = None,
    limit: int = 50,
) -> SuppressionSlice:
    """The suppression list newest first from just below `before_id` (keyset paging by id: an
    entry added meanwhile sorts above every page handed out, so none is skipped or repeated)."""
    actor.require(Permission.manage_suppressions)
    conditions = _conditions(channel, search)
    if before_id is not None:
        conditions.append(Suppression.id < before_id)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        found = list(session.scalars(
            select(Suppression).where(*conditions).order_by(Suppression.id.desc()).limit(limit + 1)
        ))
        rows = [_view(s) for s in found[:limit]]
    return SuppressionSlice(rows=rows, more=len(found) > limit)


def list_suppressions(
    db: Database,
    actor: Actor,
    *,
    channel: str | None = None,
    search: str = "",
    page: int = 1,
    page_size: int = 50,
) -> SuppressionPage:
    """One page of the suppression list, newest first, paged and counted in SQL."""
    actor.require(Permission.manage_suppressions)
    conditions = _conditions(channel, search)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        total = session.scalar(select(func.count(Suppression.id)).where(*conditions)) or 0
        pages = max(1, -(-total // page_size))
        page = min(max(1, page), pages)
        found = session.scalars(
            select(Suppression).where(*conditions)
            .order_by(Suppression.created_at.desc(), Suppression.id.desc())
            .limit(page_size).offset((page - 1) * page_size)
        )
        rows = [SuppressionView(s.id, s.channel, s.address, s.reason, s.source, s.created_at)
                for s in found]
    return SuppressionPage(rows=rows, total=total, page=page, pages=pages)


def add_suppression(db: Database, actor: Actor, *, channel: str | Channel, address: str) -> bool:
    """Suppress one phone or email by hand; False when it was suppressed already."""
    return suppress_address(db, actor, channel=channel, address=address)[1]


def suppress_address(
    db: Database, actor: Actor, *, channel: str | Channel, address: str
) -> tuple[SuppressionView, bool]:
    """`add_suppression`, answering the suppression as it stands (the new one, or the one that
    was there already) and whether it was added now."""
    actor.require(Permission.manage_suppressions)
    kind = _channel(channel)
    if kind is Channel.sms:
        result = PhoneNormaliser(tenant_country(db, actor))(address)
        normalised, problem = result.e164, result.error(address.strip())
    else:
        normalised, problem = normalise_email(address)
    if not normalised:
        raise ValidationError(problem or f"'{address}' is not a phone number or an email address")
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        added = add_suppressions_in(session, actor.tenant_id, kind, [normalised],
                                    SuppressionReason.manual, f"added by {actor.username or 'admin'}")
        if added:
            record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                         action="suppressions.add", entity="suppression",
                         details={"channel": kind.value, "address": normalised})
        row = session.scalars(
            select(Suppression).where(Suppression.channel == kind.value, Suppression.address == normalised)
        ).one()
        return _view(row), bool(added)


# The suppressions a recipient made (a STOP reply, an unsubscribe): never removed, and a lead
# holding one is not opted back in by anyone but the person.
STANDING_REASONS = frozenset({SuppressionReason.stop.value, SuppressionReason.unsubscribe.value})
REASON_WORDS = {
    SuppressionReason.stop.value: "a STOP reply",
    SuppressionReason.unsubscribe.value: "an unsubscribe",
    SuppressionReason.bounce.value: "a bounce",
    SuppressionReason.manual.value: "an entry added by hand",
}
MAX_OPT_IN_REASON = 500


@dataclass(frozen=True)
class LeadOptOut:
    """One lead's opt-out as the suppression list sees it, and whether it may be opted back in."""

    lead_id: int
    name: str
    phone: str | None
    email: str | None
    opted_out_at: datetime | None
    suppressions: tuple[SuppressionView, ...]  # of its phone (SMS) and its email (email)

    @property
    def standing(self) -> tuple[SuppressionView, ...]:
        """The suppressions the person asked for: they keep the lead out, whoever asks."""
        return tuple(s for s in self.suppressions if s.reason in STANDING_REASONS)

    @property
    def refusal(self) -> str | None:
        """Why the lead may not be opted back in; None when it may."""
        if self.standing:
            first = self.standing[0]
            return (
                f"{self.name} cannot be opted back in: {first.address} is suppressed because of "
                f"{REASON_WORDS[first.reason]}, which the person made themselves; only they can "
                "take it back, so it stays"
            )
        by_hand = any(s.reason == SuppressionReason.manual for s in self.suppressions)
        if self.opted_out_at is None and not by_hand:
            return f"{self.name} is not opted out and no address of theirs was suppressed by hand"
        return None


@dataclass(frozen=True)
class SuppressionRemoved:
    """A suppression taken off the list, and the leads with that address as they stand after."""

    channel: str
    address: str
    leads: tuple[LeadOptOut, ...]


@dataclass(frozen=True)
class OptedIn:
    """A lead opted back in: the suppressions that went with it and those that stay (bounces)."""

    lead: LeadOptOut  # as it stands after
    removed: tuple[str, ...]
    kept: tuple[SuppressionView, ...]


def _view(row: Suppression) -> SuppressionView:
    return SuppressionView(row.id, row.channel, row.address, row.reason, row.source, row.created_at)


def _lead_opt_out(session: Session, lead: Lead) -> LeadOptOut:
    wanted = [(Channel.sms, lead.phone), (Channel.email, lead.email)]
    held = [and_(Suppression.channel == c.value, Suppression.address == a) for c, a in wanted if a]
    found: Sequence[Suppression] = (
        session.scalars(select(Suppression).where(or_(*held)).order_by(Suppression.id)).all() if held else []
    )
    name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.email or lead.phone
    return LeadOptOut(lead.id, name or f"lead #{lead.id}", lead.phone, lead.email, lead.opted_out_at,
                      tuple(_view(s) for s in found))


def _leads_at(session: Session, channel: Channel, address: str) -> list[Lead]:
    column = Lead.phone if channel is Channel.sms else Lead.email
    return list(session.scalars(select(Lead).where(column == address).order_by(Lead.id)))


def remove_suppression(db: Database, actor: Actor, suppression_id: int) -> SuppressionRemoved:
    """Undo a suppression added by hand. A STOP, an unsubscribe or a bounce came from the
    recipient or the provider: those stay, whoever asks. A lead with the address stays opted out
    if it was: the answer says so, and `opt_in_lead` is the way back in."""
    actor.require(Permission.manage_suppressions)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        row = _remove(session, actor, suppression_id)
        session.flush()
        channel = Channel(row.channel)
        leads = tuple(_lead_opt_out(session, lead) for lead in _leads_at(session, channel, row.address))
    return SuppressionRemoved(channel.value, row.address, leads)


def remove_suppression_in(session: Session, actor: Actor, suppression_id: int) -> str:
    """`remove_suppression` inside the caller's transaction (the undo of a bulk opt-out removes
    its suppressions and restores its leads at once); returns the address."""
    return _remove(session, actor, suppression_id).address


def _remove(session: Session, actor: Actor, suppression_id: int) -> Suppression:
    actor.require(Permission.manage_suppressions)
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise NotFound(f"suppression {suppression_id} does not exist")
    if row.reason != SuppressionReason.manual.value:
        raise Conflict(
            f"{row.address} is suppressed because of {REASON_WORDS[row.reason]}: only suppressions "
            "added by hand can be removed"
        )
    session.delete(row)
    record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                 action="suppressions.remove", entity="suppression", entity_id=suppression_id,
                 details={"channel": row.channel, "address": row.address})
    return row


def _lead_by_address(session: Session, address: str, country: str) -> Lead:
    text = address.strip()
    if "@" in text:
        email, problem = normalise_email(text)
        if email is None:
            raise ValidationError(problem or f"'{text}' is not an email address")
        leads = _leads_at(session, Channel.email, email)
    else:
        phone = PhoneNormaliser(country)(text)
        if phone.e164 is None:
            raise ValidationError(phone.error(text) or f"'{text}' is not a phone number")
        leads = _leads_at(session, Channel.sms, phone.e164)
    if not leads:
        raise NotFound(f"no lead has the address {text}")
    return leads[0]


def find_lead_opt_out(db: Database, actor: Actor, address: str) -> LeadOptOut:
    """The opt-out of the lead with this phone or email (as typed: it is normalised)."""
    actor.require(Permission.manage_suppressions)
    actor.require(Permission.manage_leads)
    country = tenant_country(db, actor)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        return _lead_opt_out(session, _lead_by_address(session, address, country))


def opt_in_lead(db: Database, actor: Actor, lead_id: int, *, reason: str) -> OptedIn:
    """Opt a lead back in, with the reason (kept in the audit log): its opt-out is cleared and the
    suppressions added by hand on its phone and email are removed (each audit-logged).

    Refused while either address is suppressed because of the person's own STOP or unsubscribe:
    only they can take that back. A bounce stays on its address (it does not work) but does not
    keep the lead out of the other channel.
    """
    actor.require(Permission.manage_suppressions)
    actor.require(Permission.manage_leads)
    why = " ".join(reason.split())
    if not why:
        raise ValidationError("give the reason for opting the lead back in (for instance, how they asked)")
    if len(why) > MAX_OPT_IN_REASON:
        raise ValidationError(f"the reason may have at most {MAX_OPT_IN_REASON} characters")
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        lead = session.get(Lead, lead_id, with_for_update=True)
        if lead is None:
            raise NotFound(f"lead {lead_id} does not exist")
        before = _lead_opt_out(session, lead)
        if before.refusal:
            raise Conflict(before.refusal)
        manual = [s for s in before.suppressions if s.reason == SuppressionReason.manual]
        removed = tuple(remove_suppression_in(session, actor, s.id) for s in manual)
        kept = tuple(s for s in before.suppressions if s.reason != SuppressionReason.manual)
        lead.opted_out_at = None
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id,
                     action="leads.opt_in", entity="lead", entity_id=lead.id,
                     details={"reason": why,
                              "was_opted_out_at": before.opted_out_at and before.opted_out_at.isoformat(),
                              "suppressions_removed": list(removed),
                              "suppressions_kept": [s.address for s in kept]})
        session.flush()
        return OptedIn(_lead_opt_out(session, lead), removed, kept)


@dataclass(frozen=True)
class KeywordOptIn:
    """A START by SMS: whether the number's STOP was taken back, and the leads opted back in."""

    was_stopped: bool  # the number was suppressed by a STOP, or a lead holding it opted out
    removed: bool  # its STOP suppression is gone
    leads_opted_in: tuple[int, ...]
    still_blocked: bool  # something the person did not set by SMS keeps the number out


def sms_keyword_opt_in_in(session: Session, *, tenant_id: int, phone: str, source: str) -> KeywordOptIn:
    """The person texted START (or UNSTOP, YES) from `phone` (E.164), in the caller's tenant
    transaction: only the STOP suppression of this number is removed, since that is what their
    keyword put there, and a lead holding the number is opted back in when nothing else
    (an unsubscribe, an entry by hand, an erasure) still keeps it out. Audited."""
    stops = session.scalars(
        select(Suppression).where(
            Suppression.channel == Channel.sms.value,
            Suppression.address == phone,
            Suppression.reason == SuppressionReason.stop.value,
        )
    ).all()
    leads = _leads_at(session, Channel.sms, phone)
    was_stopped = bool(stops) or any(lead.opted_out_at is not None for lead in leads)
    if not was_stopped:
        return KeywordOptIn(False, False, (), False)
    for row in stops:
        session.delete(row)
    session.flush()
    opted_in: list[int] = []
    for lead in leads:
        standing = _lead_opt_out(session, lead).suppressions
        others = [s for s in standing if s.reason != SuppressionReason.bounce]
        if lead.opted_out_at is not None and not others:
            lead.opted_out_at = None
            opted_in.append(lead.id)
    blocked = is_suppressed(session, Channel.sms, phone) or any(lead.opted_out_at for lead in leads)
    record_audit(session, tenant_id=tenant_id, user_id=None, action="suppressions.sms_opt_in",
                 entity="suppression", entity_id=None,
                 details={"address": phone, "source": source[:255], "stop_removed": bool(stops),
                          "leads_opted_in": opted_in, "still_blocked": blocked})
    return KeywordOptIn(True, bool(stops), tuple(opted_in), blocked)
