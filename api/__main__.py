"""`python -m api`: the HTTP service on LEADFLOW_API_HOST:LEADFLOW_API_PORT; run as many as needed."""

from __future__ import annotations

import uvicorn

from api.main import create_app
from api.server import uvicorn_options
from core.config import Settings
from core.logs import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    uvicorn.run(create_app(settings), proxy_headers=True, **uvicorn_options(settings))


if __name__ == "__main__":
    main()
