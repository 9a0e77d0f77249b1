"""Two tenants for the lead-side endpoints: every role in the first, an admin in the second, a
lead in each with a message sent and a reply received, and a suppression added by hand in each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from core.db import Database
from core.leads.detail import create_lead
from core.models import InboundMessage, Message, Role
from core.permissions import Actor
from core.suppressions import suppress_address
from tests.factories import enrol, make_actor, make_campaign, make_tenant

SENT_AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
REPLIED_AT = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
ROLES = (Role.analyst, Role.manager, Role.admin, Role.owner)


@dataclass(frozen=True)
class Tenant:
    id: int
    actors: dict[Role, Actor]
    lead_id: int
    message_id: int
    reply_id: int
    suppression_id: int

    @property
    def admin(self) -> Actor:
        return self.actors[Role.admin]


def add_reply(
    db: Database,
    tenant_id: int,
    lead_id: int | None,
    *,
    at: datetime,
    body: str,
    classification: str | None = "interested",
    handled_at: datetime | None = None,
) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        reply = InboundMessage(
            lead_id=lead_id,
            channel="sms",
            from_address="+14155550128",
            to_address="+14155550000",
            body=body,
            provider="twilio",
            provider_message_id=f"SM{tenant_id}-{at.timestamp()}-{body}",
            received_at=at,
            classification=classification,
            classification_detail={"evidence": [body]},
            handled_at=handled_at,
        )
        session.add(reply)
        session.flush()
        return reply.id


def seed_tenant(db: Database, name: str, roles: tuple[Role, ...] = ROLES) -> Tenant:
    tenant_id = make_tenant(db, name)
    actors = {role: make_actor(db, tenant_id, role, f"{role.value}-{name.lower()}") for role in roles}
    owner = actors.get(Role.owner) or make_actor(db, tenant_id, Role.owner, f"owner-{name.lower()}")
    lead_id = create_lead(
        db,
        owner,
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "(415) 555-0128",
            "email": "ada@example.com",
            "company": "Engines Ltd",
        },
        ["vip"],
    )
    campaign_id = make_campaign(db, tenant_id, "Spring push")
    enrol(db, tenant_id, campaign_id, lead_id, first_touch="delivered", sent_at=SENT_AT)
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        message_id = session.scalars(select(Message.id).where(Message.lead_id == lead_id)).one()
    reply_id = add_reply(db, tenant_id, lead_id, at=REPLIED_AT, body="Sounds good, call me")
    suppression, _added = suppress_address(db, owner, channel="email", address="nope@example.com")
    return Tenant(tenant_id, actors, lead_id, message_id, reply_id, suppression.id)
