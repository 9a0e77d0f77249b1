"""Through the pipeline: a disguised draft is regenerated once with the guard's feedback, then the
lead fails and nothing is sent, whatever disguise the model used."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.config import Settings
from core.models import OutboxMessage
from core.pipeline.service import process_campaign_lead
from tests.core.pipeline.conftest import WORKER, Seed, scripted_runtime

OPT_OUT = "Reply STOP to opt out"
GOOD_SMS = f"Hi Ada, quick idea for Analytical Engines. Open to a 15-minute call next week? {OPT_OUT}"

# The seeded tenant allows acme.example and sends from sales@acme.example.
DISGUISED = [
    f"Hi Ada, book at https://acme.example!@evil.com/x {OPT_OUT}",
    f"Hi Ada, book at https://acme.example:@evil.com {OPT_OUT}",
    f"Hi Ada, book at https://\u0430cme.example/demo {OPT_OUT}",
    f"Hi Ada, book at acme\u3002example\u3002evil\uff0ecom {OPT_OUT}",
    f"Hi Ada, book at evil.zip {OPT_OUT}",
    f"Hi Ada, log in at 93.184.216.34/login {OPT_OUT}",
    f"Hi Ada, log in at http://0x5db8d822/ {OPT_OUT}",
    f"Hi Ada, text 2l2/555/Ol42 for a discount {OPT_OUT}",
    f"Hi Ada, text 6465550199now for a discount {OPT_OUT}",
]


@pytest.mark.parametrize("draft", DISGUISED)
def test_a_disguised_draft_is_regenerated_once_then_the_lead_fails_and_nothing_is_sent(
    seed: Seed, settings: Settings, draft: str
) -> None:
    runtime, model = scripted_runtime(seed.db, settings, draft)
    cl = seed.enrol()
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "failed"
    assert len(model.prompts) == 2  # the first draft, one regeneration, then it stops
    assert "rejected by the checker" in str(model.prompts[1][-1].content)
    row = seed.enrolment(cl)
    assert row.error and row.error.startswith("the draft failed the guard twice")
    assert seed.messages() == []
    with seed.db.session(tenant_id=seed.tenant_id, read_only=True) as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_the_regenerated_draft_is_sent_when_it_passes(seed: Seed, settings: Settings) -> None:
    runtime, model = scripted_runtime(seed.db, settings, DISGUISED[0], GOOD_SMS)
    cl = seed.enrol()
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "sent"
    assert "a user name before its host" in str(model.prompts[1][-1].content)
    assert [m.body for m in seed.messages(cl)] == [GOOD_SMS]


def test_a_disguised_draft_waiting_for_review_never_gets_there(seed: Seed, settings: Settings) -> None:
    seed.campaign(approval_required=True)
    runtime, model = scripted_runtime(seed.db, settings, DISGUISED[2])
    cl = seed.enrol()
    assert process_campaign_lead(seed.db, runtime, cl, lease_owner=WORKER) == "failed"
    assert len(model.prompts) == 2 and seed.messages() == []
