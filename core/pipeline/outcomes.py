"""What a node returns when the lead's run ends, waits or meets a provider's refusal.

Every node builds its state update from these, so a status, its reason and its event are
always written the same way; core.pipeline.finalize turns them into the enrolment's columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.compliance.frequency import CapHold, ContactCaps, cap_hold
from core.compliance.send_rules import Deferral, recipient_deferral
from core.models import EnrolmentStatus
from core.pipeline.context import PipelineContext, event
from core.pipeline.state import TenantData
from core.tenants import in_zone, tenant_time_zone

MAX_RUN_ATTEMPTS = 5  # claims of one step before a transient failure becomes final
BUDGET_REASON = "budget cap reached"
# The provider keys of the state: the last provider call of a run failed, or succeeded.
PROVIDER_OK: dict[str, Any] = {"provider_ok": True, "provider_failure": None}


def ended(
    ctx: PipelineContext,
    node: str,
    status: EnrolmentStatus,
    reason: str,
    *,
    level: str = "info",
    next_action_at: datetime | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "status": status.value,
        "reason": reason,
        "next_action_at": next_action_at,
        "events": [event(ctx, node, reason, level=level, status=status.value, **data)],
    }


def provider_failed(reason: str) -> dict[str, Any]:
    """The state keys of a provider call that failed: it counts towards the campaign's threshold."""
    return {"provider_ok": False, "provider_failure": reason}


def account_refused(ctx: PipelineContext, node: str, reason: str, **data: Any) -> dict[str, Any]:
    """A provider refused the account: the campaign pauses, the lead waits for the resume.

    The lead is left pending (its attempt given back): nothing was sent or written for it, and
    no lead of the campaign can succeed until a person fixes the account. A preview pauses
    nothing: it fails with the reason, which says what to fix.
    """
    if ctx.mode != "run":
        return ended(ctx, node, EnrolmentStatus.failed, reason, level="error", **data)
    return {
        **ended(ctx, node, EnrolmentStatus.pending, f"campaign paused: {reason}", level="error", **data),
        "pause_campaign": reason,
        "provider_ok": False,
        "provider_failure": None,  # not counted: the pause is already decided
    }


def send_deferral(ctx: PipelineContext, at: datetime | None = None) -> Deferral | None:
    """None when the recipient's send window is open (and it is no public holiday they are spared)
    at `at` (default now); else when it opens, and why not before."""
    return recipient_deferral(ctx.tenant, ctx.campaign.send_window, ctx.lead, at or ctx.now)


def contact_caps(tenant: TenantData) -> ContactCaps:
    return ContactCaps(per_day=tenant.contact_cap_per_day, per_week=tenant.contact_cap_per_week)


def capped(ctx: PipelineContext, hold: CapHold) -> Deferral:
    """The lead is over a contact cap: due when the cap and the send window both allow."""
    later = send_deferral(ctx, hold.until)
    reason = f"contact cap reached ({hold.cap}, all campaigns together)"
    return Deferral(later.until if later else hold.until, reason)


def cap_deferral(ctx: PipelineContext) -> Deferral | None:
    """The contact caps as the ledger stands now (the send decides again under the lead's lock)."""
    caps = contact_caps(ctx.tenant)
    if not caps.active or ctx.db is None or ctx.enrolment.id is None:
        return None
    with ctx.db.session(tenant_id=ctx.tenant.id, read_only=True) as session:
        this_step = (ctx.enrolment.id, ctx.enrolment.step)
        hold = cap_hold(session, caps, lead_id=int(ctx.lead["id"]), now=ctx.now, excluding=this_step)
    return None if hold is None else capped(ctx, hold)


def deferred(ctx: PipelineContext, node: str, deferral: Deferral) -> dict[str, Any]:
    """The lead waits: the reason and when it is due again, in the tenant's own clock."""
    zone = tenant_time_zone(ctx.tenant.time_zone, ctx.tenant.default_country)
    return ended(
        ctx,
        node,
        EnrolmentStatus.deferred,
        f"{deferral.reason}; due again at {in_zone(deferral.until, zone)}",
        next_action_at=deferral.until,
    )


def has_replied(ctx: PipelineContext) -> bool:
    return bool(ctx.lead.get("replied_at") or ctx.enrolment.replied_at)


