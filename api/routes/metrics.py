"""Prometheus metrics of the HTTP service (`GET /api/metrics`, the text exposition format).

Outside /api/v1 and its OpenAPI document: it is for the monitoring system, on the internal
network. With several uvicorn workers, PROMETHEUS_MULTIPROC_DIR makes every worker's counts one
answer (core.metrics).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from core.metrics import exposition

router = APIRouter()


@router.get("/api/metrics", include_in_schema=False)
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
