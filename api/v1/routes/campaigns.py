"""Campaigns: list, read, create, edit, delete a draft; start, schedule, pause, resume, cancel;
the cost estimate and a preview of a draft for one lead.

Every path calls the core service the dashboard's Campaigns page calls: the editor's validation
(core.campaign_rules), the status rules of an edit, the life cycle of core.lifecycle with the
pre-flight of core.preflight, the Run tab's estimate and the preview's pipeline.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api.v1.cursors import BadCursor, decode_cursor, encode_cursor
from api.v1.deps import ActorDep
from api.v1.etags import with_etag
from api.v1.models.campaigns import (
    Campaign,
    CampaignCreate,
    CampaignUpdate,
    Estimate,
    PauseRequest,
    Preview,
    PreviewRequest,
    ScheduleRequest,
)
from api.v1.problems import problem
from api.v1.schemas import Money, Page
from core.campaign_editor import lead_instructions, save_campaign
from core.campaign_housekeeping import delete_campaign
from core.campaign_runs import (
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    schedule_campaign,
    start_campaign,
)
from core.campaigns import campaign_page, create_campaign, get_campaign
from core.config import ConfigError
from core.db import Database
from core.models import CampaignStatus
from core.pipeline.estimate import estimate_campaign_cost
from core.preflight import PreflightRefused

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

CAMPAIGN_RESPONSES: dict[int | str, dict[str, str]] = {
    404: {"description": "No such campaign in your organisation"},
}
ACTION_RESPONSES: dict[int | str, dict[str, str]] = {
    **CAMPAIGN_RESPONSES,
    403: {"description": "Your role may not run campaigns"},
    409: {"description": "The campaign's status does not allow it, or the pre-flight refused it"},
}


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _cursor_key(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    created_at, campaign_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(created_at)), int(campaign_id)
    except (TypeError, ValueError):
        raise BadCursor("the cursor is not one this API gave out; start again without it") from None


@router.get("", response_model=Page[Campaign])
def list_campaigns(
    request: Request,
    actor: ActorDep,
    status: CampaignStatus | None = None,
    archived: Annotated[bool, Query(description="Archived campaigns instead of the others")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[Campaign]:
    """The campaigns, newest first, a page at a time (`next_cursor` for the next page)."""
    views = campaign_page(
        _database(request),
        actor,
        status=status.value if status else None,
        archived=archived,
        after=_cursor_key(cursor),
        limit=limit + 1,
    )
    page = views[:limit]
    last = page[-1] if len(views) > limit else None
    return Page[Campaign](
        items=[Campaign.of(v) for v in page],
        next_cursor=encode_cursor(last.created_at.isoformat(), last.id) if last else None,
    )


@router.post("", status_code=201, response_model=Campaign, responses={403: {"description": "Role"}})
def create(request: Request, response: Response, actor: ActorDep, body: CampaignCreate) -> Campaign:
    """A new draft, validated as the dashboard's editor validates it (every wrong field in `errors`)."""
    values = body.core_values()
    view = create_campaign(
        _database(request), actor, name=values.pop("name"), channel=values.pop("channel"), **values
    )
    response.headers["Location"] = f"{request.url.path}/{view.id}"
    return Campaign.of(view)


@router.get("/{campaign_id}", response_model=Campaign, responses=CAMPAIGN_RESPONSES)
def read(request: Request, actor: ActorDep, campaign_id: int) -> Response:
    """One campaign with its steps, variants, budget, status and the actions that status allows."""
    return with_etag(request, Campaign.of(get_campaign(_database(request), actor, campaign_id)))


@router.patch("/{campaign_id}", response_model=Campaign, responses=ACTION_RESPONSES)
def update(request: Request, actor: ActorDep, campaign_id: int, body: CampaignUpdate) -> Campaign:
    """Change the fields sent; a field the status does not let change is a 409 saying why.

    A field sent with the value it already holds is not a change (as in the editor), so a
    client may send back the whole campaign it read with one field changed.
    """
    view = save_campaign(_database(request), actor, campaign_id, body.core_values())
    return Campaign.of(view)


@router.delete("/{campaign_id}", status_code=204, responses=ACTION_RESPONSES)
def delete(request: Request, actor: ActorDep, campaign_id: int) -> Response:
    """Delete a draft that never sent (anything else is archived, not deleted: 409)."""
    delete_campaign(_database(request), actor, campaign_id)
    return Response(status_code=204)


def _refused(request: Request, error: PreflightRefused) -> JSONResponse:
    """A pre-flight refusal as a problem listing every blocking check that failed."""
    return problem(
        409,
        str(error),
        title="The pre-flight checks refused it",
        instance=request.url.path,
        type_="https://leadflow.dev/problems/preflight-refused",
        checks=[
            {"label": c.label, "passed": c.passed, "blocking": c.blocking, "words": c.words}
            for c in error.checks
        ],
    )


@router.post("/{campaign_id}/start", response_model=Campaign, responses=ACTION_RESPONSES)
def start(request: Request, actor: ActorDep, campaign_id: int) -> Response:
    """Enrol the audience and run, after the pre-flight (sender, postal address, audience, budget)."""
    try:
        view = start_campaign(_database(request), actor, campaign_id)
    except PreflightRefused as error:
        return _refused(request, error)
    return JSONResponse(Campaign.of(view).model_dump(mode="json"))


@router.post("/{campaign_id}/schedule", response_model=Campaign, responses=ACTION_RESPONSES)
def schedule(request: Request, actor: ActorDep, campaign_id: int, body: ScheduleRequest) -> Response:
    """Start the campaign at `at` (the runner starts it then); the same pre-flight as a start."""
    try:
        view = schedule_campaign(_database(request), actor, campaign_id, body.at)
    except PreflightRefused as error:
        return _refused(request, error)
    return JSONResponse(Campaign.of(view).model_dump(mode="json"))


@router.post("/{campaign_id}/pause", response_model=Campaign, responses=ACTION_RESPONSES)
def pause(request: Request, actor: ActorDep, campaign_id: int, body: PauseRequest | None = None) -> Campaign:
    """Stop claiming new leads; leads in flight finish."""
    reason = body.reason if body is not None else None
    return Campaign.of(pause_campaign(_database(request), actor, campaign_id, reason))


@router.post("/{campaign_id}/resume", response_model=Campaign, responses=ACTION_RESPONSES)
def resume(request: Request, actor: ActorDep, campaign_id: int) -> Campaign:
    return Campaign.of(resume_campaign(_database(request), actor, campaign_id))


@router.post("/{campaign_id}/cancel", response_model=Campaign, responses=ACTION_RESPONSES)
def cancel(request: Request, actor: ActorDep, campaign_id: int) -> Campaign:
    """Stop for good: every open lead ends cancelled."""
    return Campaign.of(cancel_campaign(_database(request), actor, campaign_id))


@router.get("/{campaign_id}/estimate", response_model=Estimate, responses=CAMPAIGN_RESPONSES)
def estimate(request: Request, actor: ActorDep, campaign_id: int) -> Estimate:
    """What a start would cost now: the Run tab's estimate (audience x steps x model calls)."""
    database = _database(request)
    return Estimate.of(estimate_campaign_cost(database, database.settings, actor, campaign_id))


_runtime_lock = threading.Lock()


def _preview_runtime(request: Request) -> object:
    """The models previews use, built at the first preview and kept by the service (as the
    dashboard keeps its own): their calls pass the shared gate, as a worker's do."""
    from core.pipeline.runtime import gated_runtime

    state = request.app.state
    with _runtime_lock:
        runtime = getattr(state, "preview_runtime", None)
        if runtime is None:
            database = _database(request)
            runtime = state.preview_runtime = gated_runtime(database, database.settings)
    return runtime


@router.post(
    "/{campaign_id}/preview",
    response_model=Preview,
    responses={**ACTION_RESPONSES, 503: {"description": "The model provider is not configured"}},
)
def preview(request: Request, actor: ActorDep, campaign_id: int, body: PreviewRequest) -> Preview | Response:
    """Research and draft for one lead, as the editor's preview does: nothing is sent or enrolled;
    the model calls count as the campaign's spend."""
    from core.pipeline.service import PipelineRuntime
    from core.pipeline.service import preview as preview_draft

    database = _database(request)
    try:
        runtime = _preview_runtime(request)
    except ConfigError as error:  # e.g. the openai provider without a key: say which setting
        return problem(503, f"the preview cannot run: {error}", instance=request.url.path)
    assert isinstance(runtime, PipelineRuntime)
    result = preview_draft(
        database, runtime, actor, campaign_id, body.lead_id, step=body.step, variant=body.variant
    )
    instructions = (
        lead_instructions(database, actor, campaign_id, body.lead_id, step=body.step, variant=result.variant)
        if result.body is not None
        else None
    )
    cost = Money.of_microusd(result.cost_microusd)
    assert cost is not None
    return Preview(
        status=result.status,
        reason=result.reason,
        step=body.step,
        variant=result.variant,
        facts=result.facts,
        subject=result.subject,
        body=result.body,
        segments=result.segments,
        encoding=result.encoding,
        guard_passed=result.guard_passed,
        problems=result.problems,
        cost=cost,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        instructions=instructions,
    )
