"""The service's health and readiness, through a real server."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from core.config import ConfigError, Settings
from core.db import Database, head_revision
from tests.api.conftest import ApiServer
from tests.conftest import make_settings


def test_health_answers_ok_when_the_database_does(
    settings: Settings, db: Database, api_server: ApiServer
) -> None:
    base = api_server(settings, db)
    response = httpx.get(f"{base}/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_answers_503_when_the_database_does_not(api_server: ApiServer) -> None:
    # Nothing listens on port 9 of this machine: every connection is refused.
    broken = make_settings("postgresql+psycopg://postgres@127.0.0.1:9/leadflow")
    broken_db = Database(broken)
    base = api_server(broken, broken_db)
    response = httpx.get(f"{base}/api/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    broken_db.dispose()


def test_ready_when_the_schema_is_the_newest(
    settings: Settings, db: Database, api_server: ApiServer
) -> None:
    base = api_server(settings, db)
    response = httpx.get(f"{base}/api/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema": head_revision()}


def test_not_ready_while_the_schema_is_behind(
    settings: Settings, db: Database, api_server: ApiServer
) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0020_import_warnings'"))
    try:
        base = api_server(settings, db)
        response = httpx.get(f"{base}/api/ready")
        assert response.status_code == 503
        assert "0020_import_warnings" in response.json()["reason"]
    finally:
        with db.engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )


def test_app_without_a_database_opens_the_configured_one(settings: Settings) -> None:
    # What `python -m api` does: the app opens (and at shutdown disposes of) its own database.
    app = create_app(settings)
    assert app.state.database is None
    with TestClient(app) as client:
        assert client.get("/api/health").json() == {"status": "ok", "database": "ok"}
        assert isinstance(app.state.database, Database)


def test_the_service_does_not_start_without_a_strong_cookie_key(database_url: str) -> None:
    # Outside development mode: every access token and unsubscribe link is keyed by it.
    weak = make_settings(database_url, dev_mode=False, cookie_key="short")
    with pytest.raises(ConfigError, match="LEADFLOW_COOKIE_KEY"), TestClient(create_app(weak)):
        pass
