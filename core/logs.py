"""Structured logging: console or JSON lines, with tenant, campaign and lead ids bound where known."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from core.config import Settings

_configured = False


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time: a CLI runner or a test may swap it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library once per process."""
    global _configured
    if _configured:
        return
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


@contextmanager
def bound(**ids: int | str | None) -> Iterator[None]:
    """Bind ids (tenant_id, campaign_id, lead_id, trace_id, ...) to every log line inside."""
    values = {k: v for k, v in ids.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**values):
        yield
