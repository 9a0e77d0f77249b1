"""The job runner runs the reply agent: every inbound message read once, however many workers run."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from core.config import Settings
from core.db import Database
from core.inbound.store import record_inbound
from core.models import AuditLog, InboundMessage, Lead
from jobs.runner import Runner, work_left
from tests.factories import make_tenant
from tests.jobs.conftest import wait_for

COUNT = 12
REPLIES = ["STOP", "Not interested", "How much is it?", "Sounds great", "Out of office until May 3", "ok"]


def _classified(db: Database) -> int:
    with db.session(system=True, read_only=True) as session:
        return int(session.scalar(select(func.count(InboundMessage.id))
                                  .where(InboundMessage.classified_at.is_not(None))) or 0)


def test_two_workers_read_every_reply_exactly_once(
    runner_db: Database, runner_settings: Settings, runners: list[Runner]
) -> None:
    tenant_id = make_tenant(runner_db)
    now = datetime.now(UTC)
    with runner_db.session(tenant_id=tenant_id) as session, session.begin():
        session.add_all(Lead(first_name=f"L{i}", phone=f"+1212555{i:04d}") for i in range(COUNT))
    for i in range(COUNT):
        record_inbound(runner_db, tenant_id=tenant_id, channel="sms", from_address=f"+1212555{i:04d}",
                       to_address="+12125550000", body=REPLIES[i % len(REPLIES)], provider="twilio",
                       provider_message_id=f"SM{i:032d}", received_at=now)
    assert work_left(runner_db, now=now)
    # Small batches, so the two workers' claims interleave instead of one taking every reply.
    settings = runner_settings.model_copy(update={"claim_batch_size": 2})
    for _ in range(2):
        runner = Runner(runner_db, settings, concurrency=2)
        runners.append(runner)
        runner.start()
    wait_for(lambda: _classified(runner_db) == COUNT, timeout=180)
    with runner_db.session(system=True, read_only=True) as session:
        per_reply = session.execute(
            select(AuditLog.entity_id, func.count(AuditLog.id))
            .where(AuditLog.action == "reply_agent").group_by(AuditLog.entity_id)
        ).all()
        classes = dict(session.execute(
            select(InboundMessage.classification, func.count(InboundMessage.id))
            .group_by(InboundMessage.classification)).all())
    assert len(per_reply) == COUNT and {count for _, count in per_reply} == {1}
    assert classes == {"unsubscribe": 2, "not_interested": 2, "question": 2, "interested": 2,
                       "out_of_office": 2, "unclassified": 2}
    assert not work_left(runner_db, now=datetime.now(UTC))
