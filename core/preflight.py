"""The pre-flight of a campaign start: can it send at all, and what will it cost against its cap.

One list of checks, each passed or failed in words with what to do, read by the Run tab (which
disables Start while a blocking check fails) and by `start_campaign` and `schedule_campaign`
(which refuse with the same words, so `python -m core.cli campaigns start` says the same).
An email campaign started without a postal address would otherwise fail every lead and end
"completed" with a full bar.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.db import Database
from core.errors import Conflict, NotFound
from core.models import Campaign, Channel, Tenant
from core.money import format_usd
from core.permissions import Actor, Permission
from core.pipeline.estimate import CostEstimate, estimate_campaign_cost
from core.sender_verification import unverified_sender_reason
from core.text import plural, with_article

# Where the settings a check asks for are changed, named as the dashboard shows them.
SETTINGS_PLACE = "an admin sets it in Admin > Settings"


@dataclass(frozen=True)
class PreflightCheck:
    label: str  # "Sender", "Postal address", "Audience", "Budget cap"
    passed: bool
    words: str  # what was found and, when it failed, what to do (lower case: core's voice)
    blocking: bool = True  # a failed blocking check stops the start; a failed other one warns

    @property
    def stops_start(self) -> bool:
        return self.blocking and not self.passed


@dataclass(frozen=True)
class Preflight:
    campaign_id: int
    checks: list[PreflightCheck]

    @property
    def ready(self) -> bool:
        """Nothing blocks the start (warnings may remain)."""
        return not any(c.stops_start for c in self.checks)

    def refusal(self, name: str, action: str = "start") -> PreflightRefused:
        """The error of a refused start: every blocking check's words, and the checks themselves."""
        failed = [c for c in self.checks if c.stops_start]
        reasons = "; ".join(c.words for c in failed)
        return PreflightRefused(f"campaign '{name}' cannot {action}: {reasons}", failed)


class PreflightRefused(Conflict):
    """A start or a schedule the pre-flight refused; `checks` are the blocking checks that failed,
    for a caller that lists them one by one (the API's problem document)."""

    def __init__(self, message: str, checks: list[PreflightCheck]) -> None:
        super().__init__(message)
        self.checks = checks


def _sender(tenant: Tenant, campaign: Campaign, db: Database, reason: str | None) -> PreflightCheck:
    settings = db.settings
    if campaign.channel == Channel.sms.value:
        sender = tenant.sms_sender_id or (
            settings.twilio_from_number if settings.sms_provider == "twilio" else None)
        if sender:
            return PreflightCheck("Sender", True, f"texts go out from {sender}")
        return PreflightCheck(
            "Sender", True, "no SMS sender id is set: the outbox keeps the texts here and nothing leaves "
            f"the machine; before sending for real, {SETTINGS_PLACE}")
    if reason:
        return PreflightCheck("Sender", False, reason)
    sender = tenant.email_sender or settings.smtp_from
    if sender:
        return PreflightCheck("Sender", True, f"emails go out from {sender}")
    if settings.email_provider == "smtp":
        return PreflightCheck("Sender", False, f"no email sender is set: {SETTINGS_PLACE} and verifies it")
    return PreflightCheck(
        "Sender", True, "no email sender is set: the outbox keeps the emails here and nothing leaves "
        f"the machine; before sending for real, {SETTINGS_PLACE}")


def _postal_address(tenant: Tenant) -> PreflightCheck:
    if (tenant.postal_address or "").strip():
        return PreflightCheck("Postal address", True, "every email carries the postal address")
    return PreflightCheck(
        "Postal address", False, "there is no postal address, which every marketing email must carry "
        f"(without it every lead fails): {SETTINGS_PLACE}")


def _audience(campaign: Campaign, estimate: CostEstimate) -> PreflightCheck:
    if estimate.leads:
        return PreflightCheck("Audience", True, f"{plural(estimate.leads, 'lead')} will be enrolled")
    address = "phone number" if campaign.channel == Channel.sms.value else "email address"
    return PreflightCheck(
        "Audience", False, f"the audience is empty: no lead matches the filters with {with_article(address)} "
        "that is not opted out or suppressed; widen the filters on the Editor tab or import leads")


def _budget(campaign: Campaign, estimate: CostEstimate) -> PreflightCheck:
    expected, per_lead = estimate.total_microusd, estimate.cost_per_lead_microusd
    cap = campaign.budget_cap_microusd
    if cap is None:
        return PreflightCheck("Budget cap", True,
                              f"no budget cap; the run is expected to cost {format_usd(expected)}")
    left = max(0, cap - (campaign.spent_microusd or 0))
    if per_lead > left:
        return PreflightCheck(
            "Budget cap", False, f"{format_usd(left)} is left of the {format_usd(cap)} budget cap, less than "
            f"one lead costs (about {format_usd(per_lead)}): raise the cap on the Editor tab")
    if expected > left:
        covered = left // per_lead if per_lead else estimate.leads
        return PreflightCheck(
            "Budget cap", False, f"the run is expected to cost {format_usd(expected)}, "
            f"{expected / left:.1f} times the {format_usd(left)} left of the cap: it pauses when the cap is "
            f"reached, after about {plural(int(covered), 'lead')} of {estimate.leads:,}; raise the cap on "
            "the Editor tab to reach them all", blocking=False)
    return PreflightCheck("Budget cap", True, f"the run is expected to cost {format_usd(expected)} "
                                              f"of the {format_usd(left)} left")


def preflight(
    db: Database, actor: Actor, campaign_id: int, *, estimate: CostEstimate | None = None
) -> Preflight:
    """The checks of starting the campaign now; `estimate` when the caller already has it."""
    actor.require(Permission.view_campaigns)
    estimate = estimate or estimate_campaign_cost(db, db.settings, actor, campaign_id)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        campaign = session.get(Campaign, campaign_id)
        tenant = session.get(Tenant, actor.tenant_id)
        if campaign is None or tenant is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        unverified = (unverified_sender_reason(session, tenant.id, tenant.email_sender)
                      if campaign.channel == Channel.email.value else None)
        checks = [_sender(tenant, campaign, db, unverified)]
        if campaign.channel == Channel.email.value:
            checks.append(_postal_address(tenant))
        checks += [_audience(campaign, estimate), _budget(campaign, estimate)]
    return Preflight(campaign_id, checks)
