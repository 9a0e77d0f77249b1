"""The HTTP service inside the dashboard's process: `streamlit run app.py` serves both.

Like the embedded job runner (jobs.embedded), one per server process however many browser
sessions run app.py: a uvicorn server on LEADFLOW_API_HOST:LEADFLOW_API_PORT in a daemon thread,
started on the first page load. FastAPI and uvicorn are imported in that thread, so the sign-in
page does not wait for them. In production the service runs on its own (`python -m api`, the
compose `api` service) and LEADFLOW_EMBEDDED_API=false keeps the dashboard from binding the port.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from core.background import wait_for_screen
from core.config import Settings
from core.logs import get_logger

if TYPE_CHECKING:
    import uvicorn

log = get_logger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_server: uvicorn.Server | None = None
_failure: str | None = None


def start_embedded_api(
    settings: Settings, *, after: threading.Thread | None = None
) -> threading.Thread | None:
    """Start the process's service in a background thread, once; None when off or started.

    `after`: a thread to let finish first (core.background.wait_for_screen), the script run that
    draws the first screen.
    """
    global _thread, _failure
    if not settings.embedded_api:
        return None
    with _lock:
        if _thread is not None:
            return None
        _failure = None
        _thread = threading.Thread(target=_serve, args=(settings, after), name="embedded-api", daemon=True)
        _thread.start()
        return _thread


def _serve(settings: Settings, after: threading.Thread | None = None) -> None:
    global _server, _failure
    try:
        wait_for_screen(after)
        import uvicorn

        from api.main import create_app
        from api.server import uvicorn_options

        config: Any = uvicorn.Config(create_app(settings), log_level="warning", **uvicorn_options(settings))
        server = uvicorn.Server(config)
        with _lock:
            _server = server
        server.run()
        if not server.started:
            raise RuntimeError(f"could not listen on {settings.api_host}:{settings.api_port}")
    except BaseException as exc:  # uvicorn exits with SystemExit when the port is taken
        _failure = f"the HTTP service did not start: {exc or type(exc).__name__}"
        log.warning("embedded_api_failed", error=_failure, port=settings.api_port)


def embedded_api_failure() -> str | None:
    """Why the process's service stopped or never started, or None while it runs (or is off)."""
    return _failure


def embedded_api_started() -> bool:
    server = _server
    return bool(server is not None and server.started)


def stop_embedded_api(timeout: float = 30.0) -> None:
    """Stop the process's service (tests, and a server shutting down on purpose)."""
    global _thread, _server
    with _lock:
        thread, server = _thread, _server
        _thread, _server = None, None
    if server is not None:
        server.should_exit = True
    if thread is not None:
        thread.join(timeout=timeout)
