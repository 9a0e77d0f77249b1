"""The reply agent's graph on plain inputs: classify, then act, then suggest only where it answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.config import Settings
from core.db import Database
from core.inbound.agent import ActResult, ReplyContext, ReplyData, run_reply_agent
from core.inbound.classify import Classification
from core.inbound.queue import reply_lease_seconds
from core.pipeline.runtime import PipelineRuntime
from core.pipeline.state import TenantData
from tests.conftest import make_settings

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TENANT = TenantData(id=1, name="Acme", default_country="US", send_window_start="08:00",
                    send_window_end="21:00", weekdays_only=False, sms_sender_id=None, email_sender=None,
                    postal_address=None, link_allow_list=(), playbook={}, price_overrides={})


def _context(body: str, acted: list[Classification], settings: Settings) -> ReplyContext:
    def act(_ctx: ReplyContext, found: Classification) -> ActResult:
        acted.append(found)
        return ActResult(actions=["recorded"], detail={"seen": True}, handled=True, assigned_user_id=7)

    return ReplyContext(
        runtime=PipelineRuntime.from_settings(settings, Database(settings), now=lambda: NOW), db=None,
        reply=ReplyData(id=1, tenant_id=1, channel="sms", from_address="+12125550101", body=body,
                        received_at=NOW),
        tenant=TENANT, lead=None, campaign=None, facts=[], conversation=[], canary="c", nonce="n",
        now=NOW, act=act,
    )


@pytest.mark.parametrize(
    ("body", "kind", "suggested"),
    [("Out of office until Monday", "out_of_office", False), ("What does it cost?", "question", True),
     ("STOP", "unsubscribe", False)],
)
def test_classify_act_suggest(body: str, kind: str, suggested: bool) -> None:
    acted: list[Classification] = []
    state = run_reply_agent(_context(body, acted, make_settings("sqlite://")))
    assert [c.kind.value for c in acted] == [kind]  # act ran once, on the class
    assert state["classification"] == kind
    assert state["detail"]["actions"] == ["recorded"] and state["detail"]["seen"] is True
    assert (state["handled"], state["assigned_user_id"]) == (True, 7)
    # Without a campaign's lead there is nothing to ground an answer in: suggest says so.
    assert ("suggestion" in state["detail"]) is suggested
    assert state["llm_calls"] == []  # offline: no model call


def test_a_claim_outlasts_the_slowest_run_the_settings_allow() -> None:
    settings = make_settings("sqlite://", lease_seconds=2, llm_timeout_seconds=30, llm_max_retries=3)
    # A classification and two suggestions, each timing out on every one of its 4 attempts.
    assert reply_lease_seconds(settings) > 3 * 4 * 30
    assert reply_lease_seconds(make_settings("sqlite://", lease_seconds=900)) == 900
