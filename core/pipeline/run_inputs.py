"""What a run reads before it starts: the tenant, campaign, lead and enrolment, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, select

from core.db import Database, execute_core
from core.leads.columns import RUN_COLUMNS
from core.models import Campaign, CampaignLead, Lead, Message, Suppression, Tenant
from core.pipeline.state import CampaignData, EnrolmentData, TenantData


@dataclass(frozen=True)
class RunInputs:
    tenant: TenantData
    campaign: CampaignData
    lead: dict[str, Any]
    enrolment: EnrolmentData


def tenant_data(tenant: Tenant) -> TenantData:
    return TenantData.from_values({name: getattr(tenant, name) for name in TenantData.field_names()})


def lead_data(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in RUN_COLUMNS}


def address_of(lead: dict[str, Any], channel: str) -> str | None:
    return lead.get("phone") if channel == "sms" else lead.get("email")


_TENANT_COLUMNS = {name: getattr(Tenant, name) for name in TenantData.field_names()}
_CAMPAIGN_COLUMNS = {name: getattr(Campaign, name) for name in CampaignData.field_names()}
_ENROLMENT_COLUMNS = {
    "id": CampaignLead.id,
    "step": CampaignLead.step,
    "variant": CampaignLead.variant,
    "attempts": CampaignLead.attempts,
    "approved_at": CampaignLead.approved_at,
    "draft_subject": CampaignLead.draft_subject,
    "draft_body": CampaignLead.draft_body,
    "research": CampaignLead.research,
    "guard_result": CampaignLead.guard_result,
    "replied_at": CampaignLead.replied_at,
    "trace_id": CampaignLead.trace_id,
}
_LEAD_COLUMNS = {name: getattr(Lead, name) for name in RUN_COLUMNS}
_GROUPS = {"t": _TENANT_COLUMNS, "c": _CAMPAIGN_COLUMNS, "e": _ENROLMENT_COLUMNS, "l": _LEAD_COLUMNS}


def _run_inputs_query() -> Any:
    # Columns, not entities: a run needs plain values, and loading entities (with the lead's
    # tags relationship) costs more than the rest of the read. Built once, with bound
    # parameters: constructing a select of fifty columns costs more than running it. It is
    # read in a system session (see load_run_inputs), so it is written on the tables: the ORM's
    # per-execution set-up of a statement and its rows would only add time.
    enrolments, leads = CampaignLead.__table__, Lead.__table__
    campaigns, tenants, suppressions = Campaign.__table__, Tenant.__table__, Suppression.__table__
    suppression = (
        select(suppressions.c.reason)
        .where(
            suppressions.c.tenant_id == enrolments.c.tenant_id,
            suppressions.c.channel == campaigns.c.channel,
            suppressions.c.address
            == case((campaigns.c.channel == "sms", leads.c.phone), else_=leads.c.email),
        )
        .limit(1)
        .scalar_subquery()
    )
    columns = [
        column.table.c[column.key].label(f"{prefix}_{name}")
        for prefix, group in _GROUPS.items()
        for name, column in group.items()
    ]
    return (
        select(*columns, suppression.label("suppression"))
        .join_from(
            enrolments,
            leads,
            (leads.c.id == enrolments.c.lead_id) & (leads.c.tenant_id == enrolments.c.tenant_id),
        )
        .join(
            campaigns,
            (campaigns.c.id == enrolments.c.campaign_id) & (campaigns.c.tenant_id == enrolments.c.tenant_id),
        )
        .join(tenants, tenants.c.id == enrolments.c.tenant_id)
        .where(
            enrolments.c.id == bindparam("campaign_lead_id"),
            enrolments.c.lease_owner == bindparam("lease_owner"),
        )
    )


_RUN_INPUTS = _run_inputs_query()


def load_run_inputs(db: Database, campaign_lead_id: int, *, lease_owner: str) -> RunInputs | None:
    """Everything one run reads, in one query; None when the lease is not ours.

    This is the runner's claimed unit of work, known by id only, so it is read in a system
    session; every join pins the rows to the enrolment's tenant.
    """
    with db.session(system=True, read_only=True) as session:
        row = (
            execute_core(
                session, _RUN_INPUTS, {"campaign_lead_id": campaign_lead_id, "lease_owner": lease_owner}
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            return None
        values = {
            prefix: {name: row[f"{prefix}_{name}"] for name in group} for prefix, group in _GROUPS.items()
        }
        enrolment = values["e"]
        earlier: list[dict[str, Any]] = []
        if enrolment["step"] > 0:
            earlier = [
                {"step": step, "subject": subject, "body": body}
                for step, subject, body in session.execute(
                    select(Message.step, Message.subject, Message.body)
                    .where(
                        Message.campaign_lead_id == enrolment["id"],
                        Message.tenant_id == values["t"]["id"],
                        Message.step < enrolment["step"],
                    )
                    .order_by(Message.step)
                )
            ]
    tenant = values["t"]
    campaign = values["c"]
    return RunInputs(
        tenant=TenantData.from_values(tenant),
        campaign=CampaignData(**campaign),
        lead=values["l"],
        enrolment=EnrolmentData(
            **{
                **enrolment,
                "research": list(enrolment["research"] or []),
                "guard_result": dict(enrolment["guard_result"] or {}),
            },
            earlier_messages=earlier,
            suppression=row["suppression"],
        ),
    )


