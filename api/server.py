"""How uvicorn serves the app wherever it runs (`python -m api`, inside the dashboard): one set of options."""

from __future__ import annotations

from typing import Any

from core.config import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` and `uvicorn.Config`: address and keep-alive.

    uvicorn closes a connection idle for `timeout_keep_alive` seconds (5 by default). A client
    that keeps connections in a pool (a load balancer, a proxy, Twilio, httpx) may send its next
    request on one just as the server closes it: that request is never read and its sender gets
    a reset connection instead of an answer (httpx.ReadError, a proxy's 502). The service's
    timeout is therefore longer than any such client's idle timeout
    (`LEADFLOW_API_KEEP_ALIVE_SECONDS`), so the client is always the side that closes.
    """
    return {
        "host": settings.api_host,
        "port": settings.api_port,
        "timeout_keep_alive": settings.api_keep_alive_seconds,
    }
