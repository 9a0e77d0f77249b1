"""The Campaigns page's audience count: sized once per audience, not on every rerun, and an
estimate says that it is one."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import Database
from core.models import Role
from core.permissions import Actor
from core.pipeline.estimate import AudienceSize
from pages.campaign_sections import audience
from tests.factories import insert_leads, make_actor, make_tenant
from tests.pages.conftest import PageFactory

PAGE = "pages/campaigns.py"


@pytest.fixture
def manager(db: Database) -> Actor:
    tenant_id = make_tenant(db)
    insert_leads(db, tenant_id, 3, industry="Software")
    insert_leads(db, tenant_id, 2, start=3, industry="Retail")
    return make_actor(db, tenant_id, Role.manager)


@pytest.fixture
def sized(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every audience the page sizes, in order."""
    calls: list[dict[str, Any]] = []
    real = audience.estimate_audience_size

    def counting(db: Database, actor: Actor, channel: str, filters: dict[str, Any]) -> AudienceSize:
        calls.append(filters)
        return real(db, actor, channel, filters)

    monkeypatch.setattr(audience, "estimate_audience_size", counting)
    return calls


def _counts(app: Any) -> list[str]:
    return [m.value for m in app.markdown if "match now" in m.value or "matches now" in m.value]


def test_the_audience_is_sized_once_per_audience_not_per_rerun(
    manager: Actor, open_page: PageFactory, sized: list[dict[str, Any]]
) -> None:
    app = open_page(PAGE, manager)
    assert sized == [{}] and _counts(app)[0].startswith("**5 leads** match now")
    app.text_input(key="cmpnew_name").input("Software push").run()  # a rerun, same audience
    app.run()
    assert sized == [{}]
    app.multiselect(key="cmpnew_audience_industries").select("Software").run()
    assert sized == [{}, {"industries": ["Software"]}]
    assert _counts(app)[0].startswith("**3 leads** match now")
    app.multiselect(key="cmpnew_audience_industries").unselect("Software").run()
    assert sized == [{}, {"industries": ["Software"]}]  # that audience was sized a moment ago
    assert not app.caption or all("estimate" not in c.value for c in app.caption)


def test_an_estimated_audience_says_how_it_was_estimated(
    manager: Actor, open_page: PageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audience, "estimate_audience_size",
                        lambda *_args: AudienceSize(leads=979_812, margin=0.0036, sample_leads=4_899))
    app = open_page(PAGE, manager)
    assert _counts(app)[0].startswith("**About 980,000 leads** match now (not opted out")
    assert "An estimate: ± 0.4%, estimated from a sample of 4,899 leads (95% confidence)." in [
        c.value for c in app.caption]
