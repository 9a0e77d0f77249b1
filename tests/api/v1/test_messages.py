"""/api/v1 messages, conversations and replies: who reads them, in which order, another tenant's
never, and the replies list paged by key while replies keep arriving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.v1.cursors import encode_cursor
from core.models import Role
from tests.api.v1.conftest import V1Api, problem_of
from tests.api.v1.world import REPLIED_AT, SENT_AT, Tenant, add_reply, seed_tenant


@pytest.fixture
def home(v1: V1Api) -> Tenant:
    return seed_tenant(v1.db, "Acme")


@pytest.fixture
def away(v1: V1Api) -> Tenant:
    return seed_tenant(v1.db, "Globex", (Role.admin,))



def test_a_leads_messages_and_one_message_read_with_times_in_utc(v1: V1Api, home: Tenant) -> None:
    client = v1.client(home.actors[Role.manager])
    listed = client.get(f"/leads/{home.lead_id}/messages").json()["items"]
    assert [m["id"] for m in listed] == [home.message_id]
    message = client.get(f"/messages/{home.message_id}")
    assert message.json() == listed[0]
    assert message.json()["campaign"] == "Spring push"
    assert (message.json()["status"], message.json()["step"]) == ("delivered", 0)
    assert message.json()["sent_at"] == "2026-11-30T09:00:00Z"
    again = client.get(f"/messages/{home.message_id}", headers={"If-None-Match": message.headers["etag"]})
    assert again.status_code == 304


def test_the_conversation_runs_out_and_in_in_order(v1: V1Api, home: Tenant) -> None:
    add_reply(v1.db, home.id, home.lead_id, at=SENT_AT - timedelta(days=1), body="Who is this?")
    items = v1.client(home.admin).get(f"/leads/{home.lead_id}/conversation").json()["items"]
    assert [(i["direction"], i["body"], i["at"]) for i in items] == [
        ("in", "Who is this?", "2026-11-29T09:00:00Z"),
        ("out", "Hi", "2026-11-30T09:00:00Z"),
        ("in", "Sounds good, call me", "2026-11-30T10:30:00Z"),
    ]
    assert items[2]["reply_id"] == home.reply_id
    assert items[2]["status"] == "interested"


@pytest.mark.parametrize(
    "path", ["/leads/{lead}/messages", "/leads/{lead}/conversation", "/messages/{message}"]
)
def test_an_analyst_never_reads_a_persons_messages(v1: V1Api, home: Tenant, path: str) -> None:
    url = path.format(lead=home.lead_id, message=home.message_id)
    body = problem_of(v1.client(home.actors[Role.analyst]).get(url), 403)
    assert "your role (analyst) may not view leads" in body["detail"]


@pytest.mark.parametrize(
    "path", ["/leads/{lead}/messages", "/leads/{lead}/conversation", "/messages/{message}"]
)
def test_another_tenants_messages_are_not_found(v1: V1Api, home: Tenant, away: Tenant, path: str) -> None:
    url = path.format(lead=home.lead_id, message=home.message_id)
    problem_of(v1.client(away.admin).get(url), 404)


@pytest.mark.parametrize("role", [Role.analyst, Role.manager, Role.admin, Role.owner], ids=lambda r: r.value)
def test_every_role_that_opens_the_inbox_lists_the_replies(
    v1: V1Api, home: Tenant, away: Tenant, role: Role
) -> None:
    page = v1.client(home.actors[role]).get("/replies").json()
    assert [r["id"] for r in page["items"]] == [home.reply_id]
    reply = page["items"][0]
    assert (reply["lead_id"], reply["lead_name"], reply["classification"]) == (
        home.lead_id,
        "Ada Lovelace",
        "interested",
    )
    assert (reply["received_at"], reply["handled"], page["next_cursor"]) == (
        "2026-11-30T10:30:00Z",
        False,
        None,
    )


def test_replies_filter_by_class_and_handled(v1: V1Api, home: Tenant) -> None:
    handled = add_reply(
        v1.db,
        home.id,
        home.lead_id,
        at=REPLIED_AT + timedelta(hours=1),
        body="STOP",
        classification="opt_out",
        handled_at=REPLIED_AT + timedelta(hours=2),
    )
    client = v1.client(home.actors[Role.manager])

    def ids(**params: Any) -> list[int]:
        return [r["id"] for r in client.get("/replies", params=params).json()["items"]]

    assert ids() == [handled, home.reply_id]
    assert ids(handled=True) == [handled]
    assert ids(handled=False) == [home.reply_id]
    assert ids(**{"class": "opt_out"}) == [handled]
    assert ids(**{"class": "interested", "handled": True}) == []


def test_reply_paging_skips_and_repeats_nothing_while_replies_arrive(v1: V1Api, home: Tenant) -> None:
    # Several replies at the same instant: the id breaks the tie in the key.
    same = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    for n in range(5):
        add_reply(v1.db, home.id, home.lead_id, at=same if n < 3 else same - timedelta(hours=n), body=f"r{n}")
    client = v1.client(home.admin)
    expected = [r["id"] for r in client.get("/replies", params={"limit": 500}).json()["items"]]
    assert len(expected) == 6
    seen: list[int] = []
    cursor = None
    arrived = 0
    while True:
        page = client.get("/replies", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        add_reply(v1.db, home.id, home.lead_id, at=datetime.now(UTC), body=f"new{arrived}")
        arrived += 1
    assert seen == expected
    assert arrived == 2


@pytest.mark.parametrize(
    "cursor",
    ["bm9wZQ", encode_cursor("2026-11-30T10:30:00", 5), encode_cursor("yesterday", 5), encode_cursor(1)],
    ids=["not base64 json", "time without offset", "not a time", "one part"],
)
def test_a_cursor_that_is_not_ours_is_aproblem_of(v1: V1Api, home: Tenant, cursor: str) -> None:
    body = problem_of(v1.client(home.admin).get("/replies", params={"cursor": cursor}), 422)
    assert body["errors"][0]["field"] == "cursor"


def test_another_tenants_replies_are_never_listed(v1: V1Api, home: Tenant, away: Tenant) -> None:
    assert [r["id"] for r in v1.client(away.admin).get("/replies").json()["items"]] == [away.reply_id]
