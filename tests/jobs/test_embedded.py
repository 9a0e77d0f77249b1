"""The embedded runner: one per process, however many Streamlit sessions ask for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.config import ConfigError, Settings
from core.db import Database
from core.models import WorkerHeartbeat
from jobs import embedded
from jobs.embedded import ensure_embedded_runner, stop_embedded_runner
from jobs.runner import Runner
from tests.conftest import make_settings
from tests.jobs.conftest import RUNNER_SETTINGS, wait_for


@pytest.fixture
def embedded_settings(database_url: str) -> Iterator[Settings]:
    yield make_settings(database_url, **{**RUNNER_SETTINGS, "embedded_runner": True})
    stop_embedded_runner()


def _heartbeats(db: Database) -> list[WorkerHeartbeat]:
    with db.session(system=True, read_only=True) as session:
        return list(session.scalars(select(WorkerHeartbeat)))


def test_many_sessions_at_once_start_one_runner(embedded_settings: Settings, db: Database) -> None:
    barrier = threading.Barrier(16)
    runners: list[Runner | None] = []

    def open_session() -> None:
        barrier.wait()
        runners.append(ensure_embedded_runner(embedded_settings))

    threads = [threading.Thread(target=open_session) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    first = runners[0]
    assert first is not None and first.started
    assert all(runner is first for runner in runners)
    wait_for(lambda: len(_heartbeats(db)) == 1)
    assert [(h.worker_id, h.mode) for h in _heartbeats(db)] == [(first.worker_id, "embedded")]


def _app_session() -> None:
    """What app.py does for every browser session: ask for the runner (settings from the env)."""
    import streamlit as st

    from core.config import Settings
    from jobs.embedded import ensure_embedded_runner

    runner = ensure_embedded_runner(Settings())
    st.write(runner.worker_id if runner else "no runner")


def test_streamlit_sessions_share_the_processs_runner(
    embedded_settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in embedded_settings.model_dump(include=set(RUNNER_SETTINGS) | {
            "database_url", "embedded_runner", "migrate_on_start", "dev_mode"}).items():
        monkeypatch.setenv(f"LEADFLOW_{name.upper()}", str(value))
    shown = set()
    for _ in range(4):
        session = AppTest.from_function(_app_session).run(timeout=30)
        assert not session.exception
        shown.add(session.markdown[0].value)
    runner = embedded._runner
    assert runner is not None and shown == {runner.worker_id}


def test_stopping_removes_the_heartbeat_and_a_later_call_starts_afresh(
    embedded_settings: Settings, db: Database
) -> None:
    first = ensure_embedded_runner(embedded_settings)
    assert first is not None
    wait_for(lambda: len(_heartbeats(db)) == 1)
    stop_embedded_runner()
    assert first.stopping and _heartbeats(db) == []
    second = ensure_embedded_runner(embedded_settings)
    assert second is not None and second is not first


def test_no_runner_when_the_setting_is_off(database_url: str) -> None:
    assert ensure_embedded_runner(make_settings(database_url, embedded_runner=False)) is None


def test_the_dashboard_starts_the_runner_in_the_background_once(
    embedded_settings: Settings, db: Database
) -> None:
    starting = embedded.start_embedded_runner(embedded_settings)
    assert starting is not None
    # A second session while it starts, and one after: no second thread, no second runner.
    assert embedded.start_embedded_runner(embedded_settings) is None
    starting.join(timeout=60)
    assert embedded.start_embedded_runner(embedded_settings) is None
    runner = embedded._runner
    assert runner is not None and runner.started
    assert embedded.embedded_runner_failure() is None
    wait_for(lambda: [h.worker_id for h in _heartbeats(db)] == [runner.worker_id])


def test_a_failed_background_start_is_kept_and_the_next_call_tries_again(
    embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise ConfigError("OPENAI_API_KEY is not set")

    monkeypatch.setattr("jobs.runner.Runner", refuse)
    starting = embedded.start_embedded_runner(embedded_settings)
    assert starting is not None
    starting.join(timeout=60)
    failure = embedded.embedded_runner_failure()
    assert isinstance(failure, ConfigError) and "OPENAI_API_KEY" in str(failure)
    monkeypatch.undo()
    again = embedded.start_embedded_runner(embedded_settings)
    assert again is not None
    again.join(timeout=60)
    assert embedded.embedded_runner_failure() is None and embedded._runner is not None


def test_no_background_start_when_the_setting_is_off(database_url: str) -> None:
    settings = make_settings(database_url, embedded_runner=False)
    assert embedded.start_embedded_runner(settings) is None
    assert embedded._runner is None


def test_the_background_start_waits_for_the_script_run_that_drew_the_screen(
    embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = threading.Event()
    script_run = threading.Thread(target=drawn.wait, name="ScriptRunner.scriptThread")
    script_run.start()
    run_alive_at_start: list[bool] = []
    monkeypatch.setattr(embedded, "ensure_embedded_runner",
                        lambda settings: run_alive_at_start.append(script_run.is_alive()))
    starting = embedded.start_embedded_runner(embedded_settings, after=script_run)
    assert starting is not None
    drawn.set()  # the run ends: only now may the runner's imports begin
    starting.join(timeout=60)
    assert run_alive_at_start == [False]
