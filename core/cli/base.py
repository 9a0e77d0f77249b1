"""Shared pieces of the command line: the root app, the database, JSON output and error exits."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer

from core.config import ConfigError, Settings
from core.db import Database, open_database
from core.errors import LeadflowError
from core.logs import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Leadflow: AI-assisted sales outreach. Every command takes --help.")

P = ParamSpec("P")
R = TypeVar("R")


def get_settings() -> Settings:
    return Settings()


@contextmanager
def database() -> Iterator[Database]:
    settings = get_settings()
    configure_logging(settings)
    db = open_database(settings)
    try:
        yield db
    finally:
        db.dispose()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn errors a user can cause into one clear line on stderr and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (LeadflowError, ConfigError) as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        raise AssertionError("unreachable")

    return wrapper


def read_password_stdin() -> str:
    if sys.stdin.isatty():
        fail("--password-stdin reads the password from standard input: pipe it in")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("no password on standard input")
    return password
