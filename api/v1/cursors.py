"""Opaque cursors for keyset pagination: the last row's sort key, base64url-encoded JSON.

A keyset cursor (`WHERE (created_at, id) < (:at, :id)`) stays stable while rows are inserted,
where an offset would skip or repeat them. Callers choose the key; this module only packs it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.errors import ValidationError


class BadCursor(ValidationError):
    field = "cursor"


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The key packed by encode_cursor, checked to hold `length` parts; BadCursor otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("the cursor is not one this API gave out; start again without it") from None
    if not isinstance(key, list) or len(key) != length:
        raise BadCursor("the cursor is not one this API gave out; start again without it")
    return key
