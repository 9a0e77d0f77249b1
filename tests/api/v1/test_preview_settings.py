"""A preview on a service whose model provider is not configured says which setting is missing."""

from __future__ import annotations

import pytest

from core.config import Settings
from core.db import Database
from core.models import Role
from tests.api.v1.conftest import V1Api
from tests.conftest import make_settings
from tests.factories import insert_leads, make_actor, make_campaign, make_tenant


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, llm_provider="openai")  # and no OPENAI_API_KEY


def test_a_preview_without_a_model_key_is_a_503_naming_the_setting(v1: V1Api, db: Database) -> None:
    tenant = make_tenant(db)
    (lead_id,) = insert_leads(db, tenant, 1)
    campaign_id = make_campaign(db, tenant, "Keyless", status="draft")
    response = v1.client(make_actor(db, tenant, Role.manager)).post(
        f"/campaigns/{campaign_id}/preview", json={"lead_id": lead_id}
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "OPENAI_API_KEY is not set" in response.json()["detail"]
