"""The Admin page's Webhooks tab: add an endpoint (its secret shown once), edit, rotate, send a test
event, and read the delivery log with its filters."""

from __future__ import annotations

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.db import Database
from core.models import Role, WebhookEndpoint
from core.permissions import Actor
from core.webhooks.delivery import deliver_due
from core.webhooks.endpoints import create_endpoint, list_endpoints
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory, table
from tests.support.webhook_receiver import running_receiver

PAGE = "pages/admin.py"


def _click(app: AppTest, label: str) -> AppTest:
    [button] = [b for b in app.button if b.label == label]
    return button.click().run()


def _secret_shown(app: AppTest) -> str | None:
    blocks = app.get_by_key("webhooks_secret") if _has_key(app, "webhooks_secret") else None
    return None if blocks is None else str(blocks.code[0].value)  # type: ignore[union-attr]


def _has_key(app: AppTest, key: str) -> bool:
    try:
        app.get_by_key(key)
    except KeyError:
        return False
    return True


def _admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db), Role.admin)


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(open_page: PageFactory, db: Database) -> None:
    admin = _admin(db)
    app = open_page(PAGE, admin)
    assert not app.exception
    app.text_input(key="webhook_add_url").input("https://crm.example.com/hooks")
    app.checkbox(key="webhook_add_event_message.sent").check()
    app.checkbox(key="webhook_add_event_reply.received").check()
    app = _click(app, "Add endpoint")
    assert not app.exception
    secret = _secret_shown(app)
    assert secret is not None and secret.startswith("whsec_")
    [stored] = _stored(db, admin)
    assert stored.secret == secret
    rows = table(app, "webhook_endpoints")
    assert rows[["URL", "Events", "Enabled"]].values.tolist() == [
        ["https://crm.example.com/hooks", "message.sent, reply.received", True]
    ]
    assert _secret_shown(app.run()) is None  # shown once: gone at the next run


def test_a_refused_endpoint_says_why_and_adds_nothing(open_page: PageFactory, db: Database) -> None:
    admin = _admin(db)
    app = open_page(PAGE, admin)
    app.text_input(key="webhook_add_url").input("crm.example.com/hooks")
    app = _click(app, "Add endpoint")
    assert any("not an http or https URL" in e.value for e in app.error)
    app.text_input(key="webhook_add_url").input("https://crm.example.com/hooks")
    app = _click(app, "Add endpoint")
    assert any("choose at least one event type" in e.value.lower() for e in app.error)
    assert _stored(db, admin) == []


def test_edit_rotate_and_disable(open_page: PageFactory, db: Database) -> None:
    admin = _admin(db)
    created = create_endpoint(db, admin, url="https://crm.example.com/hooks", event_types=["message.sent"])
    app = open_page(PAGE, admin)
    prefix = f"webhook_edit_{created.endpoint.id}"
    app.checkbox(key=f"{prefix}_enabled").uncheck()
    app.checkbox(key=f"{prefix}_event_lead.opted_out").check()
    app = _click(app, "Save changes")
    assert not app.exception
    rows = table(app, "webhook_endpoints")
    assert rows[["Events", "Enabled"]].values.tolist() == [["message.sent, lead.opted_out", False]]

    app.number_input(key="webhook_overlap").set_value(6.0)
    app = _click(app, "Rotate secret")
    new = _secret_shown(app)
    assert new is not None and new != created.secret
    [stored] = _stored(db, admin)
    assert (stored.secret, stored.previous_secret) == (new, created.secret)
    [view] = list_endpoints(db, admin)
    assert view.previous_secret_expires_at is not None


def test_a_test_event_appears_in_the_delivery_log_with_its_outcome(
    open_page: PageFactory, db: Database
) -> None:
    admin = _admin(db)
    with running_receiver() as receiver:
        create_endpoint(db, admin, url=receiver.url + "/ok", event_types=["message.sent"])
        app = open_page(PAGE, admin)
        app = _click(app, "Send a test event")
        assert any("queued" in s.value for s in app.success)
        log = table(app, "webhook_deliveries")
        assert log[["Event", "Status", "Attempts"]].values.tolist() == [["webhook.test", "pending", 0]]

        deliver_due(db, db.settings, worker_id="w1")
        app.run()
        log = table(app, "webhook_deliveries")
        assert log[["Event", "Status", "Code", "Attempts"]].values.tolist() == [
            ["webhook.test", "delivered", 204, 1]
        ]
        assert log["Response ms"].notna().all()
        assert [r.payload["type"] for r in receiver.received()] == ["webhook.test"]

    app.selectbox(key="webhook_log_status").set_value("failed").run()
    assert not _has_key(app, "webhook_deliveries")
    assert any("No delivery matches" in c.value for c in app.caption)
    app.selectbox(key="webhook_log_status").set_value("delivered").run()
    app.selectbox(key="webhook_log_event").set_value("webhook.test").run()
    assert len(table(app, "webhook_deliveries")) == 1


def _stored(db: Database, admin: Actor) -> list[WebhookEndpoint]:
    with db.session(tenant_id=admin.tenant_id, read_only=True) as session:
        return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))
