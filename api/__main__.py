"""`python -m api`: the HTTP service on LEADFLOW_API_HOST:LEADFLOW_API_PORT; run as many as needed."""

from __future__ import annotations

import uvicorn

from api.main import create_app
from core.config import Settings
from core.logs import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, proxy_headers=True)


if __name__ == "__main__":
    main()
