"""Entry point of `python -m core.cli`."""

from core.cli import app

app()
