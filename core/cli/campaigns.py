"""`campaigns create|start|pause|resume|cancel|retry-failed|status|list`, housekeeping and the A/B test.

Housekeeping: `clone|archive|restore|delete`; the A/B test: `ab-result|keep-winner`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.cli.base import campaign_actor, database, fail, print_json, tenant_actor, user_errors
from core.money import format_usd, usd_to_microusd
from core.text import plural

if TYPE_CHECKING:
    from core.campaigns import CampaignView
    from core.db import Database
    from core.permissions import Actor

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@user_errors
def create(
    tenant: str = typer.Option(..., help="The tenant's name."),
    name: str = typer.Option(..., help="The campaign's name."),
    channel: str = typer.Option(..., help="sms or email."),
    prompt_file: Annotated[Path | None, typer.Option(
        "--prompt-file", help="A text file with the prompt (default: the channel's)."
    )] = None,
    approval: bool = typer.Option(False, "--approval", help="Hold every draft for review."),
    budget: str | None = typer.Option(None, "--budget", help="Budget cap in US dollars."),
    as_json: bool = typer.Option(False, "--json", help='Print {"id": ...}.'),
) -> None:
    prompt = None
    if prompt_file is not None:
        try:
            prompt = prompt_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read the prompt file {prompt_file}: {exc.strerror}")
    from core.campaigns import create_campaign

    with database() as db:
        campaign = create_campaign(db, tenant_actor(db, tenant), name=name, channel=channel,
                                   system_prompt=prompt, approval_required=approval,
                                   budget_cap_microusd=usd_to_microusd(budget))
    if as_json:
        print_json({"id": campaign.id})
    else:
        typer.echo(f"created draft campaign {campaign.id}: {campaign.name} ({campaign.channel})")


LifeCycleAction = Callable[["Database", "Actor", int], "CampaignView"]
LIFE_CYCLE_VERBS = ("start", "pause", "resume", "cancel", "archive", "restore")


def _life_cycle_action(verb: str) -> LifeCycleAction:
    """The service behind a life-cycle verb, imported when the command runs."""
    from core.campaign_housekeeping import archive_campaign, restore_campaign
    from core.campaign_runs import cancel_campaign, pause_campaign, resume_campaign, start_campaign

    actions: dict[str, LifeCycleAction] = {
        "start": start_campaign, "pause": pause_campaign, "resume": resume_campaign,
        "cancel": cancel_campaign, "archive": archive_campaign, "restore": restore_campaign,
    }
    return actions[verb]


def _life_cycle_command(verb: str) -> None:
    @app.command(verb)
    @user_errors
    def command(
        campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign's id."),
        as_json: bool = typer.Option(False, "--json", help="Print the campaign as JSON."),
    ) -> None:
        from core.status_words import campaign_status_word

        action = _life_cycle_action(verb)
        with database() as db:
            campaign = action(db, campaign_actor(db, campaign_id), campaign_id)
        if as_json:
            print_json({"id": campaign.id, "status": campaign.status,
                        "status_reason": campaign.status_reason,
                        "archived": campaign.archived_at is not None})
        else:
            typer.echo(f"campaign {campaign.id} is {campaign_status_word(campaign.status)}"
                       + (" (archived)" if campaign.archived_at else ""))

    command.__doc__ = f"{verb.capitalize()} a campaign."


for _verb in LIFE_CYCLE_VERBS:
    _life_cycle_command(_verb)


@app.command("clone")
@user_errors
def clone(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign to copy (any status)."),
    as_json: bool = typer.Option(False, "--json", help='Print {"id", "name"} of the copy.'),
) -> None:
    """Copy a campaign's settings into a new draft named "Copy of ..."."""
    from core.campaign_housekeeping import clone_campaign

    with database() as db:
        copy = clone_campaign(db, campaign_actor(db, campaign_id), campaign_id)
    if as_json:
        print_json({"id": copy.id, "name": copy.name})
    else:
        typer.echo(f"created draft campaign {copy.id}: {copy.name}")


@app.command("delete")
@user_errors
def delete(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The draft to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a draft that never sent anything (a finished campaign is archived instead)."""
    from core.campaign_housekeeping import delete_campaign
    from core.campaigns import get_campaign

    with database() as db:
        actor = campaign_actor(db, campaign_id)
        campaign = get_campaign(db, actor, campaign_id)
        if not yes and not typer.confirm(f"Delete draft campaign {campaign.id} '{campaign.name}'?"):
            fail("nothing deleted")
        name = delete_campaign(db, actor, campaign_id)
    typer.echo(f"deleted draft campaign {campaign_id}: {name}")


@app.command("retry-failed")
@user_errors
def retry_failed(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign's id."),
    as_json: bool = typer.Option(False, "--json", help='Print {"id", "retried", "status"}.'),
) -> None:
    """Put the campaign's failed leads back to pending (skipped, unknown and sent ones stay)."""
    from core.campaign_runs import retry_failed_leads
    from core.campaigns import get_campaign

    with database() as db:
        actor = campaign_actor(db, campaign_id)
        retried = retry_failed_leads(db, actor, campaign_id)
        campaign = get_campaign(db, actor, campaign_id)
    if as_json:
        print_json({"id": campaign.id, "retried": retried, "status": campaign.status})
    elif retried == 0:
        typer.echo(f"campaign {campaign.id} has no failed lead to retry")
    else:
        then = "resume it to send them" if campaign.status == "paused" else "they go out as it runs"
        typer.echo(f"campaign {campaign.id}: {plural(retried, 'failed lead')} put back to pending; "
                   f"it is {campaign.status}: {then}")


@app.command("schedule")
@user_errors
def schedule(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign's id."),
    at: str = typer.Option(..., "--at", help="ISO time with offset, e.g. 2026-12-01T09:00:00+00:00."),
) -> None:
    try:
        start_at = datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at '{at}' is not an ISO date and time such as 2026-12-01T09:00:00+00:00")
        raise AssertionError("unreachable") from None
    from core.campaign_runs import schedule_campaign

    with database() as db:
        campaign = schedule_campaign(db, campaign_actor(db, campaign_id), campaign_id, start_at)
    typer.echo(f"campaign {campaign.id} starts at {campaign.scheduled_at}")


@app.command("status")
@user_errors
def status(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign's id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Counts per lead and message status, cost, tokens, throughput and ETA."""
    from core.campaign_progress import campaign_progress
    from core.status_words import due_words, lead_status_word, message_status_word

    with database() as db:
        progress = campaign_progress(db, campaign_actor(db, campaign_id), campaign_id)
    if as_json:
        print_json({**dataclasses.asdict(progress), "status_text": progress.status_text})
        return
    now = datetime.now(UTC)
    typer.echo(f"campaign {progress.campaign_id}: {progress.status_text}"
               + (f" ({progress.status_reason})" if progress.status_reason else ""))
    typer.echo(f"  leads:    {progress.enrolled} enrolled, {progress.open_leads} open")
    for name, count in sorted(progress.leads_by_status.items()):
        typer.echo(f"    {lead_status_word(name):<18} {count}")
    for step in progress.steps:
        typer.echo(f"  {step.name + ':':<13} {step.summary(now)}")
    typer.echo("  messages: " + (", ".join(f"{message_status_word(k)} {v}" for k, v in
                                           sorted(progress.messages_by_status.items())) or "none"))
    cap = f" of the {format_usd(progress.budget_cap_microusd)} cap" if progress.budget_cap_microusd else ""
    typer.echo(f"  spent:    {format_usd(progress.spent_microusd)}{cap} "
               f"({progress.input_tokens} input, {progress.output_tokens} output tokens)")
    eta = f", ETA {progress.eta_seconds / 60:.1f} min" if progress.eta_seconds else ""
    typer.echo(f"  rate:     {progress.sent_last_minute} sent in the last minute, "
               f"{progress.sent_last_5_minutes} in the last 5; {progress.leads_per_minute} leads/min{eta}")
    if progress.next_due_at is not None:
        typer.echo(f"  next due: {due_words(progress.next_due_at, now)}")


@app.command("list")
@user_errors
def list_(
    tenant: str = typer.Option(..., help="The tenant's name."),
    archived: bool = typer.Option(False, "--archived", help="Only the archived campaigns."),
    all_: bool = typer.Option(False, "--all", help="Archived campaigns too."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The tenant's campaigns, newest first (archived ones with --archived or --all)."""
    from core.campaigns import list_campaigns
    from core.status_words import campaign_status_word

    with database() as db:
        campaigns = list_campaigns(db, tenant_actor(db, tenant), archived=None if all_ else archived)
    if as_json:
        print_json([{"id": c.id, "name": c.name, "channel": c.channel, "status": c.status,
                     "archived": c.archived_at is not None} for c in campaigns])
        return
    for c in campaigns:
        typer.echo(f"{c.id:>5}  {c.name:<30} {c.channel:<5} {campaign_status_word(c.status)}"
                   + (" (archived)" if c.archived_at else ""))


@app.command("ab-result")
@user_errors
def ab_result_(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign's id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each variant's reply rate and whether the difference is significant (Fisher's exact test)."""
    from core.ab_test import ab_result

    with database() as db:
        result = ab_result(db, campaign_actor(db, campaign_id), campaign_id)
    if as_json:
        print_json(result)
        return
    for v in result.variants:
        typer.echo(f"  variant {v.name:<8} {plural(v.sent, 'lead'):>12} sent, {v.replied:,} replied "
                   f"({v.reply_rate:.1%})")
    typer.echo(result.verdict)
    if result.kept:
        typer.echo(f"variant {result.kept} was kept")


@app.command("keep-winner")
@user_errors
def keep_winner_(
    campaign_id: int = typer.Argument(..., metavar="ID", help="The campaign's id."),
    variant: str = typer.Argument(..., help="The variant to keep, e.g. B."),
) -> None:
    """Move the leads not yet drafted or sent to VARIANT and give it every new lead."""
    from core.ab_test import keep_winner

    with database() as db:
        moved = keep_winner(db, campaign_actor(db, campaign_id), campaign_id, variant)
    typer.echo(f"campaign {campaign_id}: variant {variant} kept, {plural(moved, 'lead')} moved to it")
