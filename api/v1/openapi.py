"""The checked-in OpenAPI document of /api/v1: `python -m api.v1.openapi` rewrites it.

Clients generate code from `api/v1/openapi.json`, so a change to the API shows up as a change
to this file in review; tests/api/v1/test_openapi_document.py fails while the two differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from starlette.datastructures import State

from api.v1.app import create_v1_app

DOCUMENT = Path(__file__).with_name("openapi.json")


def current_document() -> dict[str, Any]:
    """The document the code describes now, as served at /api/v1/openapi.json (no server URL)."""
    return create_v1_app(State()).openapi()


def rendered(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in document is stale")
    args = parser.parse_args()
    text = rendered(current_document())
    if args.check:
        stale = not DOCUMENT.exists() or DOCUMENT.read_text(encoding="utf-8") != text
        print(f"{DOCUMENT}: {'stale; run python -m api.v1.openapi' if stale else 'up to date'}")
        raise SystemExit(1 if stale else 0)
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT}")


if __name__ == "__main__":
    main()
