"""The checked-in OpenAPI document is the one the code serves."""

from __future__ import annotations

import json

from api.v1.openapi import DOCUMENT, current_document, rendered
from tests.api.v1.conftest import V1Api


def test_the_checked_in_openapi_document_matches_the_code() -> None:
    # When this fails, the API changed: run `python -m api.v1.openapi` and commit api/v1/openapi.json.
    assert DOCUMENT.read_text(encoding="utf-8") == rendered(current_document())


def test_the_served_document_is_the_checked_in_one(v1: V1Api) -> None:
    served = v1.client().get("/openapi.json").json()
    served.pop("servers", None)  # the mount's root path, added when served
    assert served == json.loads(DOCUMENT.read_text(encoding="utf-8"))
