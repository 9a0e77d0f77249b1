"""Page tests: run the real page script with AppTest against a fresh database, signed in as a role."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import ROOT, Settings
from core.db import Database, open_database
from core.permissions import Actor
from pages import common
from pages.campaign_sections import preview
from pages.common import ACTOR_KEY

PageFactory = Callable[..., AppTest]


def table(app: AppTest, key: str) -> pd.DataFrame:
    """The rows of the page table in the container keyed `key`.

    A read-only st.dataframe records no key of its own (only a selectable one does), so the pages
    put each table in a keyed container: a test names the table it means, not its position.
    """
    frame = app.get_by_key(key).dataframe[0].value  # type: ignore[union-attr]
    assert isinstance(frame, pd.DataFrame)
    return frame


@pytest.fixture
def page_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """Point the pages' cached settings and database at this test's database."""
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOW_DEV_MODE", "true")
    monkeypatch.setenv("LEADFLOW_EMBEDDED_RUNNER", "false")
    monkeypatch.setenv("LEADFLOW_EMBEDDED_API", "false")
    monkeypatch.setenv("LEADFLOW_MIGRATE_ON_START", "false")
    # Tenant ids restart at 1 in every test database, so cached page data must not outlive a test.
    st.cache_data.clear()
    common.get_settings.clear()
    common.get_db.clear()
    preview.get_runtime.clear()
    # The page's cached Database is dropped from the cache below, but its pool would hold its
    # connections until the garbage collector finds it: on PostgreSQL a run of page tests would
    # then use up the server's connections. Every Database a page opens is disposed here.
    opened: list[Database] = []

    def open_and_remember(settings: Settings) -> Database:
        database = open_database(settings)
        opened.append(database)
        return database

    monkeypatch.setattr(common, "open_database", open_and_remember)
    yield database_url
    st.cache_data.clear()
    common.get_db.clear()
    common.get_settings.clear()
    preview.get_runtime.clear()
    for database in opened:
        database.dispose()


@pytest.fixture
def open_page(page_env: str) -> PageFactory:
    """`open_page("pages/leads.py", actor)` runs the page once as that actor and returns the AppTest."""

    def _open(path: str, actor: Actor | None = None, *, timeout: float = 30) -> AppTest:
        app = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
        if actor is not None:
            app.session_state[ACTOR_KEY] = dataclasses.asdict(actor)
        return app.run()

    return _open


