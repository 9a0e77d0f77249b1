"""Users and roles, tenant settings, provider status and the audit log, with their rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.admin import (
    audit_filter_options,
    change_role,
    create_organisation,
    get_tenant_settings,
    invite_user,
    list_organisations,
    list_users,
    manages_organisations,
    microusd_as_dollars_text,
    price_override_rows,
    price_overrides_from_rows,
    provider_status,
    query_audit_log,
    set_user_active,
    update_tenant_settings,
    users_table,
)
from core.auth import authenticate
from core.db import Database
from core.errors import (
    Conflict,
    LoginRefused,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from core.models import AuditLog, Role, Tenant, User
from core.permissions import Actor, system_actor
from tests.conftest import make_settings
from tests.factories import PASSWORD, make_actor, make_tenant


@pytest.fixture
def tenant(db: Database) -> int:
    return make_tenant(db)


@pytest.fixture
def team(db: Database, tenant: int) -> dict[str, Actor]:
    return {role.value: make_actor(db, tenant, role) for role in Role}


def _role_of(db: Database, user_id: int) -> str:
    with db.session(system=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        return user.role


def _audit(db: Database, tenant: int) -> list[tuple[str, str | None, dict[str, Any]]]:
    with db.session(tenant_id=tenant) as session:
        return [(a.action, a.entity_id, a.details)
                for a in session.query(AuditLog).order_by(AuditLog.id)]


def _login(db: Database, username: str, password: str) -> Actor:
    return authenticate(db, username, password, max_failures=5, lock_minutes=15)


# --- invite ----------------------------------------------------------------------------------


def test_invite_shows_a_one_time_password_that_signs_in(db: Database, team: dict[str, Actor]) -> None:
    invitation = invite_user(db, team["admin"], username="New.Rep", name="New Rep",
                             email="rep@example.com", role="manager")
    assert invitation.user.username == "new.rep"
    assert invitation.user.role == "manager"
    assert len(invitation.initial_password) >= 16
    assert _login(db, "new.rep", invitation.initial_password).role is Role.manager
    with db.session(system=True) as session:
        stored = session.get(User, invitation.user.id)
        assert stored is not None and invitation.initial_password not in stored.password_hash
    assert _audit(db, team["admin"].tenant_id)[-1][0] == "create"


def test_two_invitations_get_different_passwords(db: Database, team: dict[str, Actor]) -> None:
    first = invite_user(db, team["owner"], username="one", name="", email=None, role="analyst")
    second = invite_user(db, team["owner"], username="two", name="", email=None, role="analyst")
    assert first.initial_password != second.initial_password
    assert first.user.name == "one"


@pytest.mark.parametrize(
    ("inviter", "role", "username", "error", "message"),
    [
        ("admin", "owner", "boss", PermissionDenied, "may not manage owners"),
        ("manager", "analyst", "someone", PermissionDenied, "may not manage users"),
        ("owner", "admin", "admin-1", Conflict, "taken"),
        ("owner", "chief", "someone", ValidationError, "role 'chief'"),
        ("owner", "analyst", "x", ValidationError, "not valid"),
    ],
)
def test_invite_refusals(db: Database, team: dict[str, Actor], inviter: str, role: str,
                         username: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        invite_user(db, team[inviter], username=username, name="N", email=None, role=role)


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "target", "new_role"),
    [
        ("owner", "admin", "manager"),
        ("admin", "manager", "analyst"),
        ("admin", "analyst", "admin"),
        ("owner", "analyst", "owner"),
        ("admin", "admin", "manager"),  # stepping down is allowed
    ],
)
def test_change_role_allowed(db: Database, team: dict[str, Actor], actor: str, target: str,
                             new_role: str) -> None:
    user = change_role(db, team[actor], team[target].user_id, new_role)  # type: ignore[arg-type]
    assert user.role == new_role
    assert _role_of(db, team[target].user_id) == new_role  # type: ignore[arg-type]
    action, entity_id, details = _audit(db, team[actor].tenant_id)[-1]
    assert (action, entity_id) == ("change_role", str(team[target].user_id))
    assert details["from"] == target and details["to"] == new_role


@pytest.mark.parametrize(
    ("actor", "target", "new_role", "error", "message"),
    [
        ("admin", "manager", "owner", PermissionDenied, "may not manage owners"),
        ("admin", "owner", "admin", PermissionDenied, "may not manage owners"),
        ("manager", "analyst", "manager", PermissionDenied, "may not manage users"),
        ("owner", "owner", "admin", Conflict, "last active owner"),
        ("owner", "admin", "superuser", ValidationError, "role 'superuser'"),
    ],
)
def test_change_role_refused(db: Database, team: dict[str, Actor], actor: str, target: str,
                             new_role: str, error: type[Exception], message: str) -> None:
    before = _role_of(db, team[target].user_id)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        change_role(db, team[actor], team[target].user_id, new_role)  # type: ignore[arg-type]
    assert _role_of(db, team[target].user_id) == before  # type: ignore[arg-type]


def test_the_last_active_owner_cannot_be_demoted(db: Database, team: dict[str, Actor], tenant: int) -> None:
    owner_id = team["owner"].user_id
    with pytest.raises(Conflict, match="last active owner"):
        change_role(db, system_actor(tenant), owner_id, "admin")  # type: ignore[arg-type]
    second = make_actor(db, tenant, Role.owner, "second-owner")
    # With a second owner, the first may step down.
    assert change_role(db, team["owner"], owner_id, "admin").role == "admin"  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="last active owner"):
        change_role(db, system_actor(tenant), second.user_id, "manager")  # type: ignore[arg-type]


def test_an_inactive_owner_does_not_count(db: Database, team: dict[str, Actor], tenant: int) -> None:
    second = make_actor(db, tenant, Role.owner, "second-owner")
    set_user_active(db, team["owner"], second.user_id, False)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="last active owner"):
        change_role(db, system_actor(tenant), team["owner"].user_id, "admin")  # type: ignore[arg-type]
    # Demoting the inactive owner leaves the active one in place, so it is allowed.
    assert change_role(db, team["owner"], second.user_id, "admin").role == "admin"  # type: ignore[arg-type]


def test_users_of_another_tenant_are_not_found(db: Database, team: dict[str, Actor]) -> None:
    stranger = make_actor(db, make_tenant(db, "Other"), Role.analyst, "stranger")
    with pytest.raises(NotFound):
        change_role(db, team["owner"], stranger.user_id, "manager")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        set_user_active(db, team["owner"], stranger.user_id, False)  # type: ignore[arg-type]
    assert _role_of(db, stranger.user_id) == "analyst"  # type: ignore[arg-type]


# --- activation ------------------------------------------------------------------------------


def test_deactivate_refuses_sign_in_and_reactivate_restores_it(db: Database, team: dict[str, Actor]) -> None:
    manager = team["manager"]
    assert not set_user_active(db, team["admin"], manager.user_id, False).active  # type: ignore[arg-type]
    with pytest.raises(LoginRefused, match="deactivated"):
        _login(db, manager.username, PASSWORD)
    assert set_user_active(db, team["admin"], manager.user_id, True).active  # type: ignore[arg-type]
    assert _login(db, manager.username, PASSWORD).user_id == manager.user_id
    actions = [a for a, _, _ in _audit(db, manager.tenant_id)]
    assert actions[-2:] == ["deactivate", "reactivate"]


@pytest.mark.parametrize(
    ("actor", "target", "error", "message"),
    [
        ("admin", "admin", PermissionDenied, "deactivate yourself"),
        ("owner", "owner", PermissionDenied, "deactivate yourself"),
        ("admin", "owner", PermissionDenied, "may not manage owners"),
        ("analyst", "manager", PermissionDenied, "may not manage users"),
    ],
)
def test_deactivate_refused(db: Database, team: dict[str, Actor], actor: str, target: str,
                            error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        set_user_active(db, team[actor], team[target].user_id, False)  # type: ignore[arg-type]


def test_the_last_active_owner_cannot_be_deactivated(
        db: Database, team: dict[str, Actor], tenant: int) -> None:
    with pytest.raises(Conflict, match="last active owner"):
        set_user_active(db, system_actor(tenant), team["owner"].user_id, False)  # type: ignore[arg-type]


def test_only_owners_reactivate_owners(db: Database, team: dict[str, Actor], tenant: int) -> None:
    second = make_actor(db, tenant, Role.owner, "second-owner")
    set_user_active(db, team["owner"], second.user_id, False)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="may not manage owners"):
        set_user_active(db, team["admin"], second.user_id, True)  # type: ignore[arg-type]
    assert set_user_active(db, team["owner"], second.user_id, True).active  # type: ignore[arg-type]


def test_reactivating_clears_a_lock(db: Database, team: dict[str, Actor]) -> None:
    analyst = team["analyst"]
    with db.session(system=True) as session, session.begin():
        user = session.get(User, analyst.user_id)
        assert user is not None
        user.active, user.locked_until, user.failed_logins = False, datetime(2099, 1, 1, tzinfo=UTC), 3
    reactivated = set_user_active(db, team["admin"], analyst.user_id, True)  # type: ignore[arg-type]
    assert reactivated.locked_until is None


# --- tenant settings -------------------------------------------------------------------------


def test_settings_defaults(db: Database, team: dict[str, Actor]) -> None:
    current = get_tenant_settings(db, team["admin"])
    assert current.default_country == "US"
    assert (current.send_window_start, current.send_window_end) == ("08:00", "21:00")
    assert current.price_overrides == {} and current.monthly_budget_microusd is None


@pytest.mark.parametrize(
    ("name", "given", "stored"),
    [
        ("default_country", " gb ", "GB"),
        ("send_window_start", "09:30", "09:30"),
        ("weekdays_only", True, True),
        ("sms_sender_id", "Acme", "Acme"),
        ("sms_sender_id", "+1 415 555 2671", "+14155552671"),
        ("sms_sender_id", "  ", None),
        ("email_sender", "Acme Sales <Sales@Example.COM>", "Acme Sales <sales@example.com>"),
        ("email_sender", "sales@example.com", "sales@example.com"),
        ("postal_address", "  1 Main St, Springfield  ", "1 Main St, Springfield"),
        ("link_allow_list", "https://Example.com\nshop.example.org/\n\nexample.com",
         ["example.com", "shop.example.org"]),
        ("link_allow_list", ["acme.io"], ["acme.io"]),
        ("playbook", '{"default": {"value_propositions": [" Saves time "], "proof_points": []}}',
         {"default": {"value_propositions": ["Saves time"], "proof_points": []}}),
        ("playbook", {"retail": {"proof_points": ["Used by 40 shops"]}},
         {"retail": {"value_propositions": [], "proof_points": ["Used by 40 shops"]}}),
        ("price_overrides", {"gpt-4o": {"input": "2.5", "output": 10}},
         {"gpt-4o": {"input": 2.5, "output": 10.0}}),
        ("monthly_budget_microusd", 250_000_000, 250_000_000),
        ("monthly_budget_microusd", None, None),
        ("time_zone", " Europe/Berlin ", "Europe/Berlin"),
        ("time_zone", "", None),
        ("contact_cap_per_day", " 1 ", 1),
        ("contact_cap_per_day", "", None),
        ("contact_cap_per_week", 3, 3),
        ("skip_public_holidays", True, True),
        ("holiday_country", " de ", "DE"),
        ("holiday_country", "", None),
    ],
)
def test_settings_are_normalised(db: Database, team: dict[str, Actor], name: str, given: Any,
                                 stored: Any) -> None:
    updated = update_tenant_settings(db, team["admin"], {name: given})
    assert getattr(updated, name) == stored
    assert getattr(get_tenant_settings(db, team["owner"]), name) == stored


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"default_country": "XX"}, "country 'XX'"),
        ({"send_window_start": "9am"}, "send window start '9am' is not a time of day"),
        ({"send_window_end": "24:00"}, "send window end '24:00'"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time zone 'Mars/Olympus_Mons' is not an IANA zone"),
        ({"contact_cap_per_day": "0"}, "the cap per lead a day must be between 1 and 1000"),
        ({"contact_cap_per_week": "three"}, "the cap per lead a week 'three' is not a whole number"),
        ({"holiday_country": "Narnia"}, "no public holiday calendar for 'Narnia'"),
        ({"sms_sender_id": "AcmeCorporation"}, "up to 11 letters"),
        ({"sms_sender_id": "12345"}, "at least one letter"),
        ({"sms_sender_id": "+1555"}, "not a valid phone number"),
        ({"email_sender": "sales at example"}, "email sender 'sales at example' is not valid"),
        ({"postal_address": "x" * 501}, "at most 500 characters"),
        ({"link_allow_list": "example.com/path"}, "must be a domain"),
        ({"link_allow_list": "https://user@example.com"}, "must be a domain"),
        ({"link_allow_list": "localhost"}, "not a domain"),
        ({"playbook": "{not json"}, "not valid JSON"),
        ({"playbook": "[1, 2]"}, "must be a JSON object"),
        ({"playbook": {"retail": {"value_props": []}}}, "unknown key value_props"),
        ({"playbook": {"retail": {"proof_points": "one"}}}, "must be a list of texts"),
        ({"playbook": {"retail": []}}, "must be an object"),
        ({"price_overrides": {"gpt-4o": {"input": -1, "output": 1}}}, "between 0 and"),
        ({"price_overrides": {"gpt-4o": {"input": "cheap", "output": 1}}}, "'cheap' is not a number"),
        ({"price_overrides": {"gpt-4o": {"input": 1}}}, "exactly input and output"),
        ({"price_overrides": {"gpt-4o": {"input": float("nan"), "output": 1}}}, "between 0 and"),
        ({"monthly_budget_microusd": -1}, "between \\$0 and"),
        ({"tenant_name": "x"}, "unknown setting"),
    ],
)
def test_invalid_settings_are_refused(db: Database, team: dict[str, Actor], changes: dict[str, Any],
                                      message: str) -> None:
    before = get_tenant_settings(db, team["owner"])
    with pytest.raises(ValidationError, match=message):
        update_tenant_settings(db, team["admin"], changes)
    assert get_tenant_settings(db, team["owner"]) == before


@pytest.mark.parametrize(("start", "end"), [("22:00", "06:00"), ("21:00", "08:00"), ("09:00", "09:00")])
def test_send_windows_across_midnight_are_accepted(db: Database, team: dict[str, Actor], start: str,
                                                   end: str) -> None:
    saved = update_tenant_settings(db, team["admin"], {"send_window_start": start, "send_window_end": end})
    assert (saved.send_window_start, saved.send_window_end) == (start, end)


def test_settings_audit_records_what_changed(db: Database, team: dict[str, Actor], tenant: int) -> None:
    update_tenant_settings(db, team["admin"], {"default_country": "DE", "send_window_start": "08:00",
                                               "monthly_budget_microusd": 5_000_000})
    action, _, details = _audit(db, tenant)[-1]
    assert action == "update"
    assert details == {"default_country": {"from": "US", "to": "DE"},
                       "monthly_budget_microusd": {"from": None, "to": 5_000_000}}
    count = len(_audit(db, tenant))
    update_tenant_settings(db, team["admin"], {"default_country": "de"})
    assert len(_audit(db, tenant)) == count  # nothing changed: nothing audited


@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_settings_need_manage_settings(db: Database, team: dict[str, Actor], role: str) -> None:
    with pytest.raises(PermissionDenied):
        get_tenant_settings(db, team[role])
    with pytest.raises(PermissionDenied):
        update_tenant_settings(db, team[role], {"default_country": "GB"})


def test_settings_are_per_tenant(db: Database, team: dict[str, Actor]) -> None:
    other = make_actor(db, make_tenant(db, "Other"), Role.owner, "other-owner")
    update_tenant_settings(db, other, {"sms_sender_id": "Other"})
    assert get_tenant_settings(db, team["owner"]).sms_sender_id is None


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"model": "gpt-4o", "input": 2.5, "output": 10.0}], {"gpt-4o": {"input": 2.5, "output": 10.0}}),
        ([{"model": "", "input": None, "output": float("nan")}], {}),
        ([], {}),
    ],
)
def test_price_rows(rows: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    assert price_overrides_from_rows(rows) == expected


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"model": "", "input": 1, "output": 2}], "price row 1: the model name is missing"),
        ([{"model": "a", "input": 1, "output": 1}, {"model": "a", "input": 1, "output": 1}],
         "price row 2: model 'a' is listed twice"),
        ([{"model": "a", "input": 1, "output": None}], "needs both an input and an output"),
        ([{"model": "a", "input": 1, "output": -2}], "between 0 and"),
    ],
)
def test_price_rows_refused(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        price_overrides_from_rows(rows)


# --- provider status -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"LLM": ("offline", "configured", ()), "SMS": ("outbox", "configured", ()),
              "Email": ("outbox", "configured", ())}),
        ({"llm_provider": "openai"}, {"LLM": ("openai", "missing", ("OPENAI_API_KEY",))}),
        ({"llm_provider": "openai", "openai_api_key": "sk-very-secret"},
         {"LLM": ("openai", "configured", ())}),
        ({"sms_provider": "twilio", "twilio_account_sid": "AC123"},
         {"SMS": ("twilio", "missing", ("LEADFLOW_TWILIO_AUTH_TOKEN", "LEADFLOW_TWILIO_FROM_NUMBER"))}),
        ({"sms_provider": "twilio", "twilio_account_sid": "AC123", "twilio_auth_token": "tok-secret",
          "twilio_from_number": "+14155550100"}, {"SMS": ("twilio", "configured", ())}),
        ({"email_provider": "smtp", "smtp_host": "mail", "smtp_from": "a@b.co", "smtp_username": "u"},
         {"Email": ("smtp", "missing", ("LEADFLOW_SMTP_PASSWORD",))}),
        ({"email_provider": "smtp", "smtp_host": "mail", "smtp_from": "a@b.co"},
         {"Email": ("smtp", "configured", ())}),
    ],
)
def test_provider_status(tmp_path: Any, overrides: dict[str, Any],
                         expected: dict[str, tuple[str, str, tuple[str, ...]]]) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/x.db", **overrides)
    actor = Actor(user_id=1, tenant_id=1, role=Role.admin)
    statuses = {s.channel: s for s in provider_status(settings, actor)}
    for channel, (provider, status, missing) in expected.items():
        assert (statuses[channel].provider, statuses[channel].status, statuses[channel].missing) == (
            provider, status, missing)
    assert "secret" not in repr(statuses)


def test_provider_status_needs_manage_settings(tmp_path: Any) -> None:
    with pytest.raises(PermissionDenied):
        provider_status(make_settings(f"sqlite:///{tmp_path}/x.db"),
                        Actor(user_id=1, tenant_id=1, role=Role.manager))


# --- audit log -------------------------------------------------------------------------------


def _add_audit(db: Database, tenant: int, user_id: int | None, action: str, when: datetime) -> None:
    with db.session(tenant_id=tenant) as session, session.begin():
        session.add(AuditLog(user_id=user_id, action=action, entity="thing", details={"n": 1},
                             created_at=when))


def test_audit_log_pages_and_filters(db: Database, team: dict[str, Actor], tenant: int) -> None:
    admin = team["admin"]
    with db.session(tenant_id=tenant) as session, session.begin():
        session.query(AuditLog).delete()
    for day in range(1, 31):
        _add_audit(db, tenant, admin.user_id if day % 2 else None,
                   "export" if day % 3 == 0 else "update", datetime(2026, 11, day, 12, tzinfo=UTC))
    _add_audit(db, make_tenant(db, "Other"), None, "update", datetime(2026, 11, 5, tzinfo=UTC))

    first = query_audit_log(db, admin, page_size=25)
    assert (first.total, first.pages, len(first.entries)) == (30, 2, 25)
    assert first.entries["time"].iloc[0] == datetime(2026, 11, 30, 12, tzinfo=UTC)
    second = query_audit_log(db, admin, page=2, page_size=25)
    assert len(second.entries) == 5
    assert second.entries["time"].iloc[-1] == datetime(2026, 11, 1, 12, tzinfo=UTC)

    exports = query_audit_log(db, admin, action="export")
    assert exports.total == 10
    by_admin = query_audit_log(db, admin, user_id=admin.user_id)
    assert by_admin.total == 15 and set(by_admin.entries["user"]) == {admin.username}
    assert set(query_audit_log(db, admin, user_id=None).entries["user"]) == {admin.username, "system"}
    window = query_audit_log(db, admin, since=date(2026, 11, 10), until=date(2026, 11, 12))
    assert window.total == 3
    assert window.entries["details"].iloc[0] == '{"n": 1}'


def test_audit_filter_options(db: Database, team: dict[str, Actor], tenant: int) -> None:
    _add_audit(db, tenant, None, "export", datetime(2026, 11, 5, tzinfo=UTC))
    options = audit_filter_options(db, team["admin"])
    assert "export" in options.actions and "create" in options.actions
    assert set(options.users.values()) == {a.username for a in team.values()}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"page_size": 7}, ValidationError, "page size"),
        ({"since": date(2026, 11, 5), "until": date(2026, 11, 1)}, ValidationError, "after the end"),
    ],
)
def test_audit_log_refusals(db: Database, team: dict[str, Actor], kwargs: dict[str, Any],
                            error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        query_audit_log(db, team["admin"], **kwargs)


@pytest.mark.parametrize("role", ["manager", "analyst"])
def test_audit_log_needs_permission(db: Database, team: dict[str, Actor], role: str) -> None:
    with pytest.raises(PermissionDenied):
        query_audit_log(db, team[role])


def test_a_page_past_the_end_gives_the_last(db: Database, team: dict[str, Actor], tenant: int) -> None:
    for n in range(30):  # 34 entries with the team's four: the last page of 25 is page 2
        _add_audit(db, tenant, None, "import", datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n))
    audit = query_audit_log(db, team["admin"], page=99, page_size=25)
    assert (audit.page, audit.total, len(audit.entries)) == (2, 34, 9)


def test_users_table_states(db: Database, team: dict[str, Actor]) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with db.session(system=True) as session, session.begin():
        session.query(User).filter_by(username=team["manager"].username).update(
            {"locked_until": datetime(2026, 11, 21, tzinfo=UTC)})
        session.query(User).filter_by(username=team["analyst"].username).update({"active": False})
    table = users_table(list_users(db, team["admin"]), now=now).set_index("username")
    assert table.loc[team["manager"].username, "state"] == "locked"
    assert table.loc[team["analyst"].username, "state"] == "inactive"
    assert table.loc[team["owner"].username, "state"] == "active"
    later = users_table(list_users(db, team["admin"]),
                        now=datetime(2026, 11, 22, tzinfo=UTC)).set_index("username")
    assert later.loc[team["manager"].username, "state"] == "active"  # the lock has run out


@pytest.mark.parametrize(("microusd", "text"), [
    (None, ""), (1_250_500_000, "1250.50"), (1, "0.000001"), (0, "0.00"), (7_000_000, "7.00")])
def test_budget_as_text(microusd: int | None, text: str) -> None:
    assert microusd_as_dollars_text(microusd) == text


def test_price_rows_round_trip() -> None:
    prices = {"gpt-4o": {"input": 2.5, "output": 10.0}}
    assert price_overrides_from_rows(price_override_rows(prices)) == prices


# -- sender ids are unique across tenants -------------------------------------------------------


@pytest.fixture
def rival(db: Database) -> Actor:
    return make_actor(db, make_tenant(db, "Rival"), Role.admin, "rival-admin")


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        ("+14155552671", "+1 (415) 555-2671"),
        ("+14155552671", "+1.415.555.2671"),
        ("+442079460958", "+44 20 7946 0958"),
        ("+14155552671", "(415) 555-2671"),  # the rival's default country is US
        ("+14155552671", "\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff12\uff16\uff17\uff11"),
        ("Acme", "ACME"),
        ("Acme Corp", "acme  corp"),
        ("Acme Corp", "AcmeCorp"),
        ("Acme", "\uff21\uff43\uff4d\uff45"),  # fullwidth Ａｃｍｅ
        ("Amazon", "AMAZ0N"),  # a zero for the O
        ("Paypal", "PayPa1"),  # a one for the l
        ("Modern", "Mo dern"),
    ],
)
def test_an_sms_sender_id_of_one_tenant_cannot_be_set_by_another(
    db: Database, team: dict[str, Actor], rival: Actor, mine: str, theirs: str
) -> None:
    update_tenant_settings(db, team["admin"], {"sms_sender_id": mine})
    with pytest.raises(Conflict, match="already used by another tenant"):
        update_tenant_settings(db, rival, {"sms_sender_id": theirs})
    assert get_tenant_settings(db, rival).sms_sender_id is None
    # The owner may save it again, written another way.
    assert update_tenant_settings(db, team["admin"], {"sms_sender_id": theirs}).sms_sender_id


def test_a_released_sms_sender_id_can_be_taken(db: Database, team: dict[str, Actor], rival: Actor) -> None:
    update_tenant_settings(db, team["admin"], {"sms_sender_id": "Acme"})
    update_tenant_settings(db, team["admin"], {"sms_sender_id": ""})
    assert update_tenant_settings(db, rival, {"sms_sender_id": "ACME"}).sms_sender_id == "ACME"


@pytest.mark.parametrize(("mine", "theirs"), [("Acme", "ACME"), ("+14155552671", "+1 415 555 2671")])
def test_the_database_refuses_a_sender_id_the_service_check_missed(
    db: Database, team: dict[str, Actor], rival: Actor, monkeypatch: pytest.MonkeyPatch,
    mine: str, theirs: str,
) -> None:
    # Two admins saving at once both pass the check; the unique index stops the second.
    update_tenant_settings(db, team["admin"], {"sms_sender_id": mine})
    monkeypatch.setattr("core.tenant_settings.sms_sender_in_use", lambda *args, **kwargs: False)
    with pytest.raises(Conflict, match="already used by another tenant"):
        update_tenant_settings(db, rival, {"sms_sender_id": theirs})
    assert get_tenant_settings(db, rival).sms_sender_id is None
    assert get_tenant_settings(db, team["owner"]).sms_sender_id == mine


def test_the_migration_keeps_the_first_of_two_tenants_sharing_a_sender_id(tmp_path: Any) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from core.db import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0006_drop_redundant_indexes")
        for tenant_id, name, sender in [(1, "First", "+14155552671"), (2, "Copycat", "+1 415 555 2671"),
                                        (3, "Other", "Acme")]:
            connection.execute(text(
                "INSERT INTO tenants (id, name, default_country, quiet_hours_start, quiet_hours_end, "
                "weekdays_only, sms_sender_id, link_allow_list, playbook, price_overrides, created_at) "
                "VALUES (:id, :name, 'US', '08:00', '21:00', 0, :sender, '[]', '{}', '{}', "
                "'2026-11-01 00:00:00')"), {"id": tenant_id, "name": name, "sender": sender})
        command.upgrade(config, "head")
        rows = connection.execute(text(
            "SELECT id, sms_sender_id, sms_sender_key FROM tenants ORDER BY id")).all()
        audit = connection.execute(text("SELECT tenant_id, details FROM audit_log")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "+14155552671", "+14155552671"), (2, None, None),
                                             (3, "Acme", "acme")]
    assert [row[0] for row in audit] == [2] and "unique across tenants" in audit[0][1]


def test_a_role_change_checked_only_raises_the_same_and_changes_nothing(
    db: Database, team: dict[str, Actor], tenant: int
) -> None:
    owner_id = team["owner"].user_id
    with pytest.raises(Conflict, match="last active owner"):
        change_role(db, team["owner"], owner_id, "admin", check_only=True)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        change_role(db, team["admin"], owner_id, "manager", check_only=True)  # type: ignore[arg-type]
    make_actor(db, tenant, Role.owner, "second-owner")
    assert change_role(db, team["owner"], owner_id, "manager", check_only=True).role == "owner"  # type: ignore[arg-type]
    assert _role_of(db, owner_id) == "owner"  # type: ignore[arg-type]
    with db.session(system=True, read_only=True) as session:
        assert session.query(AuditLog).filter_by(tenant_id=tenant, action="change_role").count() == 0


# -- organisations created by an owner of the installation -------------------------------------------


def _organisation(db: Database, actor: Actor, **overrides: Any) -> Any:
    values: dict[str, Any] = {"name": "Globex", "default_country": "gb", "username": "Olivia",
                              "user_name": "Olivia Pope", "email": "olivia@globex.example", "role": "admin"}
    values.update(overrides)
    return create_organisation(db, actor, **values)


def _tenants_and_users(db: Database) -> tuple[list[str], list[tuple[int, str]]]:
    with db.session(system=True, read_only=True) as session:
        tenants = sorted(session.scalars(select(Tenant.name)))
        users = sorted(tuple(row) for row in session.execute(select(User.tenant_id, User.username)))
    return tenants, users


def test_an_owner_creates_an_organisation_with_its_first_admin(db: Database, team: dict[str, Actor]) -> None:
    owner = team["owner"]
    make_actor(db, owner.tenant_id, Role.analyst, "olivia")  # the same username next door: no obstacle
    created = _organisation(db, owner)
    assert (created.tenant.name, created.tenant.default_country, created.tenant.users) == ("Globex", "GB", 1)
    user = created.invitation.user
    assert (user.tenant_id, user.username, user.name, user.role) == (created.tenant.id, "olivia",
                                                                      "Olivia Pope", "admin")
    assert user.password_change_required
    actor = authenticate(db, "olivia", created.invitation.initial_password, max_failures=5,
                         lock_minutes=15, organisation="globex")
    assert (actor.tenant_id, actor.role) == (created.tenant.id, Role.admin)
    with db.session(system=True, read_only=True) as session:
        audit = session.execute(
            select(AuditLog.tenant_id, AuditLog.user_id, AuditLog.action, AuditLog.details)
            .where(AuditLog.action.in_(["tenants.create", "setup"])).order_by(AuditLog.id)
        ).all()
    first = {"first_user": "olivia", "role": "admin"}
    made = {"name": "Globex", "default_country": "GB", **first}
    assert [tuple(row) for row in audit] == [
        (owner.tenant_id, owner.user_id, "tenants.create", made),
        (created.tenant.id, None, "setup", {"created_by": owner.username, **first}),
    ]
    assert [t.name for t in list_organisations(db, owner)] == ["Acme", "Globex"]


@pytest.mark.parametrize("role", [Role.admin, Role.manager, Role.analyst])
def test_only_owners_create_or_list_organisations(db: Database, team: dict[str, Actor], role: Role) -> None:
    with pytest.raises(PermissionDenied):
        _organisation(db, team[role.value])
    with pytest.raises(PermissionDenied):
        list_organisations(db, team[role.value])
    assert _tenants_and_users(db)[0] == ["Acme"]


def test_another_organisations_owner_neither_creates_nor_sees_organisations(
    db: Database, team: dict[str, Actor]
) -> None:
    created = _organisation(db, team["owner"])  # Acme, the first organisation, runs the installation
    globex_owner = make_actor(db, created.tenant.id, Role.owner, "gail")
    assert not manages_organisations(db, globex_owner)
    assert manages_organisations(db, team["owner"])
    with pytest.raises(PermissionDenied, match="installation's own organisation"):
        list_organisations(db, globex_owner)
    with pytest.raises(PermissionDenied, match="installation's own organisation"):
        _organisation(db, globex_owner, name="Initech", username="ida")
    assert _tenants_and_users(db)[0] == ["Acme", "Globex"]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"name": " acme "}, Conflict, "a tenant named 'acme' already exists"),
        ({"default_country": "XX"}, ValidationError, "country 'XX'"),
        ({"username": "x"}, ValidationError, "username 'x' is not valid"),
        ({"email": "not-an-email"}, ValidationError, "email 'not-an-email' is not valid"),
        ({"role": "manager"}, ValidationError, "its admin or its owner"),
    ],
)
def test_a_refused_organisation_leaves_nothing_behind(
    db: Database, team: dict[str, Actor], overrides: dict[str, str], error: type[Exception], message: str
) -> None:
    before = _tenants_and_users(db)
    with pytest.raises(error, match=message):
        _organisation(db, team["owner"], **overrides)
    assert _tenants_and_users(db) == before
