"""The Admin page's Providers tab shows the webhook URLs to paste into Twilio, from LEADFLOW_PUBLIC_URL."""

from __future__ import annotations

import pytest

from core.db import Database
from core.models import Role
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory

PAGE = "pages/admin.py"


def _codes(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [block.value for block in app.code]


@pytest.mark.parametrize("role", [Role.admin, Role.owner])
def test_the_exact_urls_are_shown_from_the_public_url(
    open_page: PageFactory, db: Database, monkeypatch: pytest.MonkeyPatch, role: Role
) -> None:
    monkeypatch.setenv("LEADFLOW_PUBLIC_URL", "https://leadflow.example.com/")
    app = open_page(PAGE, make_actor(db, make_tenant(db), role))
    assert not app.exception
    assert not [i for i in app.info if i.value.startswith("LEADFLOW_PUBLIC_URL")]
    assert _codes(app) == [
        "https://leadflow.example.com/api/webhooks/twilio/sms",
        "https://leadflow.example.com/api/webhooks/twilio/status",
        "https://leadflow.example.com/api/unsubscribe/{token}",
    ]


def test_an_explicit_status_callback_url_is_the_one_shown(
    open_page: PageFactory, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_PUBLIC_URL", "https://leadflow.example.com")
    monkeypatch.setenv("LEADFLOW_TWILIO_STATUS_CALLBACK_URL", "https://hooks.example.com/twilio/status")
    app = open_page(PAGE, make_actor(db, make_tenant(db), Role.admin))
    assert _codes(app)[1] == "https://hooks.example.com/twilio/status"
    assert any("overrides" in caption.value for caption in app.caption)


def test_without_a_public_url_a_clear_note_and_no_urls(open_page: PageFactory, db: Database) -> None:
    app = open_page(PAGE, make_actor(db, make_tenant(db), Role.admin))
    assert not app.exception
    assert _codes(app) == []
    [note] = [i for i in app.info if i.value.startswith("LEADFLOW_PUBLIC_URL is not set")]
    assert "every webhook answers 403" in note.value
