"""ETags on GETs: a weak validator from the response's JSON; `If-None-Match` answers 304."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def etag_of(content: Any) -> str:
    body = json.dumps(jsonable_encoder(content), sort_keys=True, separators=(",", ":")).encode()
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter.
    wanted = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag.removeprefix("W/") in wanted


def with_etag(request: Request, content: Any, *, status_code: int = 200) -> Response:
    """`content` as JSON with its ETag, or 304 Not Modified when the caller already holds it."""
    etag = etag_of(content)
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(jsonable_encoder(content), status_code=status_code, headers={"ETag": etag})
