"""`campaigns ...`, `messages list` and `leads reply` from the command line, against a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from core.cli import app
from core.db import Database
from core.models import Campaign, CampaignLead
from jobs.runner import Runner
from tests.conftest import make_settings
from tests.factories import insert_leads, zone_at_midday
from tests.jobs.conftest import RUNNER_SETTINGS, wait_for

cli = CliRunner()


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOW_MIGRATE_ON_START", "false")
    monkeypatch.setenv("LEADFLOW_LOG_LEVEL", "WARNING")
    return database_url


def run(*args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


@pytest.fixture
def tenant(cli_env: str, db: Database) -> int:
    tenant_id = int(run_json("tenants", "create", "Acme")["id"])
    insert_leads(db, tenant_id, 3, time_zone=zone_at_midday())
    return tenant_id


def test_create_prints_the_id_and_takes_prompt_approval_and_budget(
    tenant: int, db: Database, tmp_path: Path
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Write a two-line SMS about our freight software.", encoding="utf-8")
    created = run_json("campaigns", "create", "--tenant", "Acme", "--name", "Winter", "--channel",
                       "sms", "--prompt-file", str(prompt), "--approval", "--budget", "12.50")
    assert set(created) == {"id"}
    with db.session(system=True, read_only=True) as session:
        campaign = session.get(Campaign, created["id"])
    assert campaign is not None
    assert (campaign.system_prompt, campaign.approval_required, campaign.budget_cap_microusd) == (
        "Write a two-line SMS about our freight software.", True, 12_500_000)


@pytest.mark.parametrize(("args", "message"), [
    (("campaigns", "start", "999"), "campaign 999 does not exist"),
    (("campaigns", "create", "--tenant", "Nope", "--name", "x", "--channel", "sms"), "no tenant named"),
    (("campaigns", "create", "--tenant", "Acme", "--name", "x", "--channel", "fax"), "not one of"),
    (("campaigns", "create", "--tenant", "Acme", "--name", "x", "--channel", "sms", "--budget",
      "lots"), "not an amount"),
    # NaN used to end in a traceback; a negative cap is refused by the campaign's own rule.
    (("campaigns", "create", "--tenant", "Acme", "--name", "x", "--channel", "sms", "--budget",
      "nan"), "not an amount"),
    (("campaigns", "create", "--tenant", "Acme", "--name", "x", "--channel", "sms", "--budget",
      "-5"), "may not be negative"),
    (("messages", "list", "--campaign", "999"), "campaign 999 does not exist"),
    (("campaigns", "retry-failed", "999"), "campaign 999 does not exist"),
    (("leads", "reply", "--tenant", "Acme", "--phone", "12345"), "not a valid number"),
])
def test_mistakes_print_an_error_and_exit_non_zero(tenant: int, args: tuple[str, ...], message: str) -> None:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 1
    assert message in result.output


def test_the_life_cycle_from_the_command_line(tenant: int) -> None:
    campaign_id = str(run_json("campaigns", "create", "--tenant", "Acme", "--name", "Q4",
                               "--channel", "sms")["id"])
    assert run_json("campaigns", "start", campaign_id)["status"] == "running"
    assert run_json("campaigns", "pause", campaign_id)["status"] == "paused"
    assert "cannot be paused" in run("campaigns", "pause", campaign_id, code=1)
    assert run_json("campaigns", "resume", campaign_id)["status"] == "running"
    assert run_json("campaigns", "cancel", campaign_id)["status"] == "cancelled"
    status = run_json("campaigns", "status", campaign_id)
    assert status["leads_by_status"] == {"cancelled": 3}


def test_retry_failed_puts_the_failed_leads_back(tenant: int, db: Database) -> None:
    campaign_id = str(run_json("campaigns", "create", "--tenant", "Acme", "--name", "Q4",
                               "--channel", "sms")["id"])
    run("campaigns", "start", campaign_id)
    with db.session(system=True) as session, session.begin():
        first, second, _ = session.scalars(select(CampaignLead.id).order_by(CampaignLead.id)).all()
        session.execute(update(CampaignLead).where(CampaignLead.id.in_([first, second]))
                        .values(status="failed", attempts=5, error="Twilio refused the account"))
    run("campaigns", "pause", campaign_id)
    assert run_json("campaigns", "retry-failed", campaign_id) == {
        "id": int(campaign_id), "retried": 2, "status": "paused"}
    with db.session(system=True, read_only=True) as session:
        rows = session.execute(select(CampaignLead.status, CampaignLead.attempts)).all()
    assert sorted(rows) == [("pending", 0)] * 3
    assert "no failed lead to retry" in run("campaigns", "retry-failed", campaign_id)
    run("campaigns", "cancel", campaign_id)
    assert "cannot be given its failed leads back" in run("campaigns", "retry-failed", campaign_id,
                                                            code=1)


def test_status_and_messages_after_a_run(tenant: int, cli_env: str, db: Database) -> None:
    campaign_id = int(run_json("campaigns", "create", "--tenant", "Acme", "--name", "Q4",
                               "--channel", "sms")["id"])
    run("campaigns", "start", str(campaign_id))
    runner = Runner(db, make_settings(cli_env, **RUNNER_SETTINGS), concurrency=3)
    runner.start()
    try:
        wait_for(lambda: run_json("campaigns", "status", str(campaign_id))["status"] == "completed")
    finally:
        runner.stop()

    status = run_json("campaigns", "status", str(campaign_id))
    assert status["leads_by_status"] == {"sent": 3}
    assert status["messages_by_status"] == {"sent": 3}
    assert {"cost_microusd", "input_tokens", "output_tokens"} <= set(status)
    assert status["input_tokens"] > 0 and status["output_tokens"] > 0
    messages = run_json("messages", "list", "--campaign", str(campaign_id))
    assert len(messages) == 3
    assert all(set(m) == {"lead_id", "to", "step", "status", "body"} for m in messages)
    assert {(m["step"], m["status"]) for m in messages} == {(0, "sent")}
    assert all(m["to"].startswith("+1") and "STOP" in m["body"] for m in messages)
    assert "leads:" in run("campaigns", "status", str(campaign_id))


def test_a_reply_from_the_command_line_stops_the_follow_up(tenant: int, db: Database) -> None:
    campaign_id = str(run_json("campaigns", "create", "--tenant", "Acme", "--name", "Q4",
                               "--channel", "sms")["id"])
    run("campaigns", "start", campaign_id)
    with db.session(system=True) as session, session.begin():
        row = session.scalars(select(CampaignLead).order_by(CampaignLead.id)).first()
        assert row is not None
        row.step, row.status = 1, "pending"  # the first touch went out; a follow-up is due later
        lead_id = row.lead_id
    recorded = run_json("leads", "reply", "--tenant", "Acme", "--phone", "(202) 555-0000")
    assert recorded == {"lead_id": lead_id, "sequences_stopped": 1, "opted_out": False}
    with db.session(system=True, read_only=True) as session:
        stopped = session.scalar(select(CampaignLead).where(CampaignLead.lead_id == lead_id))
    assert stopped is not None and (stopped.status, stopped.next_action_at) == ("sent", None)


def test_clone_archive_restore_and_delete_from_the_command_line(tenant: int, db: Database) -> None:
    original = run_json("campaigns", "create", "--tenant", "Acme", "--name", "Winter",
                        "--channel", "sms")["id"]
    copy = run_json("campaigns", "clone", str(original))
    assert copy["name"] == "Copy of Winter"
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == original).values(status="completed"))
    assert run_json("campaigns", "archive", str(original))["archived"] is True
    listed = run_json("campaigns", "list", "--tenant", "Acme")
    assert [c["name"] for c in listed] == ["Copy of Winter"]
    assert [c["name"] for c in run_json("campaigns", "list", "--tenant", "Acme", "--archived")] == ["Winter"]
    assert "(archived)" in run("campaigns", "list", "--tenant", "Acme", "--all")
    assert run_json("campaigns", "restore", str(original))["archived"] is False
    # Deleting asks first; "no" keeps the draft.
    refused = cli.invoke(app, ["campaigns", "delete", str(copy["id"])], input="n\n")
    assert refused.exit_code == 1 and "nothing deleted" in refused.output
    assert f"deleted draft campaign {copy['id']}: Copy of Winter" in run(
        "campaigns", "delete", str(copy["id"]), "--yes")
    assert "only a draft that never sent can be deleted" in run(
        "campaigns", "delete", str(original), "--yes", code=1)
    with db.session(system=True, read_only=True) as session:
        assert session.scalars(select(Campaign.name)).all() == ["Winter"]


def test_the_ab_result_and_keep_the_winner_from_the_command_line(tenant: int, db: Database) -> None:
    from datetime import UTC, datetime

    from tests.factories import enrol

    campaign = run_json("campaigns", "create", "--tenant", "Acme", "--name", "AB", "--channel", "sms")["id"]
    leads = insert_leads(db, tenant, 5, start=100)
    with db.session(system=True) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == campaign).values(
            status="running", variants=[{"name": "A", "prompt": "brief"}, {"name": "B", "prompt": "ask"}]))
    enrol(db, tenant, campaign, leads[0], variant="A", first_touch="sent")
    enrol(db, tenant, campaign, leads[1], variant="B", first_touch="sent", replied_at=datetime.now(UTC))
    enrol(db, tenant, campaign, leads[2], variant="A", status="pending")
    result = run_json("campaigns", "ab-result", str(campaign))
    assert [(v["name"], v["sent"], v["replied"]) for v in result["variants"]] == [("A", 1, 0), ("B", 1, 1)]
    assert not result["significant"] and "more leads per variant" in result["verdict"]
    assert "variant B" in run("campaigns", "ab-result", str(campaign))
    assert "variant B kept, 1 lead moved to it" in run("campaigns", "keep-winner", str(campaign), "B")
    assert "has no variant 'C'" in run("campaigns", "keep-winner", str(campaign), "C", code=1)
    assert run_json("campaigns", "ab-result", str(campaign))["kept"] == "B"
def test_start_refuses_what_cannot_send_with_the_run_tabs_words(tenant: int, db: Database) -> None:
    from core.permissions import system_actor
    from core.preflight import preflight

    campaign_id = int(run_json("campaigns", "create", "--tenant", "Acme", "--name", "Mail",
                               "--channel", "email")["id"])
    [postal] = [c.words for c in preflight(db, system_actor(tenant), campaign_id).checks if c.stops_start]
    output = run("campaigns", "start", str(campaign_id), code=1)
    assert f"campaign 'Mail' cannot start: {postal}" in " ".join(output.split())
    assert "postal address" in postal
    assert run_json("campaigns", "status", str(campaign_id))["status"] == "draft"


def test_status_speaks_of_steps_and_statuses_in_words(tenant: int, db: Database) -> None:
    campaign_id = str(run_json("campaigns", "create", "--tenant", "Acme", "--name", "Q4",
                               "--channel", "sms")["id"])
    run("campaigns", "start", campaign_id)
    with db.session(system=True) as session, session.begin():
        session.execute(update(CampaignLead).values(status="awaiting_approval"))
    output = run("campaigns", "status", campaign_id)
    assert "waiting for review" in output and "awaiting_approval" not in output
    assert "first touch:  0 sent · 3 waiting for review" in output
    run("campaigns", "cancel", campaign_id)
    assert f"campaign {campaign_id}: cancelled: 0 sent, 3 cancelled (cancelled by" in run(
        "campaigns", "status", campaign_id)
    assert run_json("campaigns", "status", campaign_id)["status_text"] == "cancelled: 0 sent, 3 cancelled"
