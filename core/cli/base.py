"""Shared pieces of the command line: the root app, the database, JSON output and error exits.

The command modules import only typer and the standard library at the top: `--help` and the
commands that fail on their arguments answer at once. The services (SQLAlchemy, pandas, bcrypt,
the importer, the settings) are imported inside the commands that call them.
"""

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
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from core.errors import LeadflowError

if TYPE_CHECKING:
    from core.config import Settings
    from core.db import Database
    from core.permissions import Actor

# Plain help and usage errors: Rich's formatting (boxes, colours) alone costs more CPU to import
# than the whole command line is allowed to start in; a plain text is also what scripts read.
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Leadflow: AI-assisted sales outreach. Every command takes --help.")

P = ParamSpec("P")
R = TypeVar("R")


def get_settings() -> Settings:
    from core.config import Settings

    return Settings()


@contextmanager
def database() -> Iterator[Database]:
    from core.db import open_database
    from core.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    db = open_database(settings)
    try:
        yield db
    finally:
        db.dispose()


def tenant_actor(db: Database, tenant: str) -> Actor:
    """The command line acts as the system actor of the tenant it names."""
    from core.permissions import system_actor
    from core.tenants import tenant_id_by_name

    return system_actor(tenant_id_by_name(db, tenant))


def campaign_actor(db: Database, campaign_id: int) -> Actor:
    """The system actor of the tenant that owns the campaign."""
    from core.campaigns import tenant_of_campaign
    from core.permissions import system_actor

    return system_actor(tenant_of_campaign(db, campaign_id))


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


def _user_error_types() -> tuple[type[Exception], ...]:
    """The errors a user can cause: ConfigError only once the settings are loaded (nothing else
    can raise it), so that a command failing on its arguments does not load them to say so."""
    config = sys.modules.get("core.config")
    return (LeadflowError, config.ConfigError) if config else (LeadflowError,)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn errors a user can cause into one clear line on stderr and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _user_error_types() as exc:
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
