"""The compose request bounds every lead field, whatever length the lead's data has."""

from __future__ import annotations

from core.campaign_shape import Step
from core.config import Settings
from core.llm import prompts
from core.pipeline.drafting import LEAD_PROMPT_CHARS, compose_request
from core.pipeline.state import CampaignData
from tests.core.pipeline.conftest import Seed, scripted_runtime
from tests.core.pipeline.test_service import GOOD_SMS, run

NOTE = "Met at the Berlin fair; wants pricing for 40 seats. " + "blah " * 2_100_000  # ~10 MB


def _campaign() -> CampaignData:
    return CampaignData(
        id=1,
        tenant_id=1,
        name="Intro",
        channel="sms",
        status="running",
        system_prompt="Write a friendly intro.",
        variants=(),
        model="gpt-4o-mini",
        temperature=0.2,
        steps=(Step(),),
        research_web=False,
        max_sms_segments=1,
        send_window=None,
        approval_required=False,
    )


def test_every_lead_field_is_clipped_to_its_budget_in_the_request() -> None:
    lead = {
        "first_name": "Ada" * 50_000,
        "last_name": "Lovelace",
        "company": "C" * 1_000_000,
        "title": "CTO",
        "industry": "Software",
        "city": "London",
        "country": "GB",
        "notes": NOTE,
    }
    _system, request = compose_request(
        _campaign(),
        lead,
        step=0,
        variant="A",
        earlier_messages=[],
        facts=[],
        feedback=None,
        canary="LF-CANARY-x",
        nonce="n0nce",
    )
    block = prompts.read_block(request, prompts.BLOCK_LEAD)
    assert set(block) == set(lead)
    for name, value in block.items():
        assert len(value) <= LEAD_PROMPT_CHARS.get(name, LEAD_PROMPT_CHARS["default"]), name
    assert block["notes"].startswith("Met at the Berlin fair; wants pricing for 40 seats.")
    assert block["notes"].endswith("…")
    assert (block["last_name"], block["title"]) == ("Lovelace", "CTO")  # short fields untouched
    assert len(request) < 6_000


def test_a_lead_with_a_ten_megabyte_note_gets_a_bounded_prompt_and_its_message(
    seed: Seed, settings: Settings
) -> None:
    runtime, model = scripted_runtime(seed.db, settings, GOOD_SMS)
    cl = seed.enrol(seed.lead(notes=NOTE))
    assert run(seed, runtime, cl) == "sent"
    [compose] = model.prompts
    request = str(compose[-1].content)
    assert "Met at the Berlin fair" in request
    assert len(request) < 6_000
