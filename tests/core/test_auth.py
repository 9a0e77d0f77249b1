"""Password hashing, the login throttle, roles and the first-owner setup."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import jwt
import pytest

import core.config
from core.auth import (
    MAX_PASSWORD_LENGTH,
    authenticate,
    create_first_owner,
    create_user,
    has_any_user,
    hash_password,
    session_token,
    username_from_session_token,
    verify_password,
)
from core.config import DEV_COOKIE_KEY, ROOT, ConfigError, Settings
from core.db import Database
from core.errors import Conflict, LoginRefused, PermissionDenied, ValidationError
from core.models import Role
from core.permissions import ROLE_PERMISSIONS, Permission
from tests.factories import PASSWORD, make_actor, make_tenant

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "password",
    [
        "ten chars!",
        "x" * 72,
        "y" * 73,  # past bcrypt's 72 bytes
        "é" * MAX_PASSWORD_LENGTH,  # 256 bytes of UTF-8
        "🔐" * MAX_PASSWORD_LENGTH,  # 512 bytes of UTF-8
        "nul\x00inside-pw",
        "  spaces around  ",
    ],
)
def test_hash_round_trip(password: str) -> None:
    hashed = hash_password(password)
    assert verify_password(password, hashed)
    assert not verify_password(password + "!", hashed)


def test_bytes_past_72_still_count() -> None:
    hashed = hash_password("a" * 80 + "tail-one")
    assert not verify_password("a" * 80 + "tail-two", hashed)


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 10"), ("z" * (MAX_PASSWORD_LENGTH + 1), "at most 128")],
)
def test_password_policy(password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        hash_password(password)


def test_overlong_password_never_verifies_and_never_crashes() -> None:
    assert not verify_password("q" * 10_000, hash_password("q" * 128))


def test_malformed_hash_is_a_failed_check() -> None:
    assert not verify_password("whatever-password", "not-a-bcrypt-hash")


def _login(db: Database, username: str, password: str, now: datetime):
    return authenticate(db, username, password, max_failures=5, lock_minutes=15, now=now)


def test_login_succeeds_and_is_case_insensitive(db: Database) -> None:
    tenant = make_tenant(db)
    make_actor(db, tenant, Role.manager, "Mia")
    actor = _login(db, "  MIA ", PASSWORD, T0)
    assert (actor.username, actor.role, actor.tenant_id) == ("mia", Role.manager, tenant)


def test_five_failures_lock_and_sixth_right_password_is_refused(db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    for attempt in range(4):
        with pytest.raises(LoginRefused, match="attempt"):
            _login(db, "ann", "wrong password!", T0 + timedelta(seconds=attempt))
    with pytest.raises(LoginRefused, match="locked for 15 minutes"):
        _login(db, "ann", "wrong password!", T0 + timedelta(seconds=5))
    with pytest.raises(LoginRefused, match="locked"):
        _login(db, "ann", PASSWORD, T0 + timedelta(minutes=14, seconds=59))
    assert _login(db, "ann", PASSWORD, T0 + timedelta(minutes=15, seconds=6)).username == "ann"


def test_throttle_holds_across_database_handles(db: Database, settings) -> None:
    """Each Database stands for a process: the count lives in the database, not in memory."""
    make_actor(db, make_tenant(db), Role.analyst, "bob")
    for _ in range(5):
        other = Database(settings)
        with pytest.raises(LoginRefused):
            _login(other, "bob", "wrong password!", T0)
        other.dispose()
    with pytest.raises(LoginRefused, match="locked"):
        _login(db, "bob", PASSWORD, T0 + timedelta(minutes=1))


def test_success_resets_the_failure_count(db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "cyd")
    for _ in range(4):
        with pytest.raises(LoginRefused):
            _login(db, "cyd", "wrong password!", T0)
    _login(db, "cyd", PASSWORD, T0)
    for _ in range(4):
        with pytest.raises(LoginRefused, match="left"):
            _login(db, "cyd", "wrong password!", T0)


def test_unknown_user_is_refused_like_a_wrong_password(db: Database) -> None:
    with pytest.raises(LoginRefused, match="^wrong username or password$"):
        _login(db, "nobody", PASSWORD, T0)


def test_first_owner_only_once(db: Database) -> None:
    assert not has_any_user(db)
    owner = create_first_owner(db, tenant_name="Acme", default_country="gb", username="Olga",
                               name="Olga O", email="olga@example.com", password=PASSWORD)
    assert (owner.username, owner.role) == ("olga", "owner")
    assert has_any_user(db)
    with pytest.raises(Conflict, match="already set up"):
        create_first_owner(db, tenant_name="Other", default_country="US", username="eve",
                           name="Eve", email=None, password=PASSWORD)


def test_first_owner_validation_leaves_nothing(db: Database) -> None:
    with pytest.raises(ValidationError, match="country"):
        create_first_owner(db, tenant_name="Acme", default_country="XX", username="olga",
                           name="Olga", email=None, password=PASSWORD)
    assert not has_any_user(db)


@pytest.mark.parametrize(
    ("creator", "new_role", "allowed"),
    [
        (Role.owner, Role.owner, True),
        (Role.admin, Role.owner, False),
        (Role.admin, Role.manager, True),
        (Role.manager, Role.analyst, False),
        (Role.analyst, Role.analyst, False),
    ],
)
def test_who_may_create_whom(db: Database, creator: Role, new_role: Role, allowed: bool) -> None:
    actor = make_actor(db, make_tenant(db), creator)
    call = lambda: create_user(db, actor, username="newbie", name="New", email=None,  # noqa: E731
                               role=new_role, password=PASSWORD)
    if allowed:
        assert call().role == new_role.value
    else:
        with pytest.raises(PermissionDenied):
            call()


def test_usernames_unique_across_tenants(db: Database) -> None:
    make_actor(db, make_tenant(db, "A"), Role.owner, "sam")
    other = make_actor(db, make_tenant(db, "B"), Role.owner, "owner-b")
    with pytest.raises(Conflict, match="taken"):
        create_user(db, other, username="SAM", name="Sam", email=None, role=Role.analyst,
                    password=PASSWORD)


def test_permission_table_is_nested() -> None:
    analyst, manager, admin, owner = (ROLE_PERMISSIONS[r] for r in
                                      (Role.analyst, Role.manager, Role.admin, Role.owner))
    assert analyst < manager < admin < owner
    assert Permission.manage_leads not in manager
    assert Permission.review_drafts not in analyst


# -- the sign-in cookie's token -----------------------------------------------------------------


def test_a_session_token_names_its_user_until_it_expires() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    token = session_token("mia", "k" * 32, now + timedelta(days=1))
    assert username_from_session_token(token, "k" * 32, now=now) == "mia"
    assert username_from_session_token(token, "k" * 32, now=now + timedelta(days=1, seconds=1)) is None


@pytest.mark.parametrize("token", [None, "", "not.a.token", "a.b"])
def test_a_missing_or_malformed_token_names_nobody(token: str | None) -> None:
    assert username_from_session_token(token, "k" * 32) is None


def test_a_token_signed_with_another_key_or_edited_names_nobody() -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    assert username_from_session_token(session_token("mia", "other" * 8, expires), "k" * 32) is None
    header, _, signature = session_token("mia", "k" * 32, expires).split(".")
    forged_claims = jwt.utils.base64url_encode(
        json.dumps({"username": "owner", "exp_date": expires.timestamp()}).encode()
    ).decode()
    assert username_from_session_token(f"{header}.{forged_claims}.{signature}", "k" * 32) is None


def test_a_cookie_issued_by_streamlit_authenticator_still_signs_in() -> None:
    # The claims and algorithm streamlit-authenticator 0.4 wrote, before Leadflow signed its own.
    expires = datetime.now(UTC) + timedelta(days=1)
    legacy = jwt.encode({"username": "mia", "exp_date": expires.timestamp()}, "k" * 32, algorithm="HS256")
    assert username_from_session_token(legacy, "k" * 32) == "mia"


# -- the cookie-signing key ---------------------------------------------------------------------

EXAMPLE_SECRETS = ROOT / ".streamlit" / "secrets.toml.example"


def _production_settings(key: str | None) -> Settings:
    return Settings(_env_file=None, dev_mode=False, cookie_key=key)  # type: ignore[call-arg]


def _example_cookie_key_line() -> str:
    (line,) = [line for line in EXAMPLE_SECRETS.read_text().splitlines() if "cookie_key" in line
               and "=" in line]
    return line


def test_the_example_secrets_file_ships_the_cookie_key_commented_out(tmp_path, monkeypatch) -> None:
    line = _example_cookie_key_line()
    assert line.lstrip().startswith("#")
    # Copied as is, the example sets no key: the dashboard refuses to start without one.
    monkeypatch.setattr(core.config, "SECRETS_FILE", tmp_path / "secrets.toml")
    (tmp_path / "secrets.toml").write_text(EXAMPLE_SECRETS.read_text())
    with pytest.raises(ConfigError, match="LEADFLOW_COOKIE_KEY is missing"):
        Settings(_env_file=None).require_cookie_key()  # type: ignore[call-arg]


def test_the_example_placeholder_uncommented_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(core.config, "SECRETS_FILE", tmp_path / "secrets.toml")
    (tmp_path / "secrets.toml").write_text(_example_cookie_key_line().lstrip("# ") + "\n")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cookie_key is not None
    with pytest.raises(ConfigError, match="LEADFLOW_COOKIE_KEY is a public"):
        settings.require_cookie_key()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (None, "is missing"),
        ("", "is missing"),
        ("Xy7#pQ2!vL9@", "shorter than 32"),
        (DEV_COOKIE_KEY, "public"),
        (DEV_COOKIE_KEY.upper().replace("-", "_"), "public"),
        ("Replace Me With A Long Random String Of 48 Characters", "public"),
        ("q" * 48, "fewer than 10 different"),
        ("7" * 32, "fewer than 10 different"),
        ("ab" * 24, "fewer than 10 different"),
        ("0123456789abcdef" * 3, "repeats or sequences"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "repeats or sequences"),
        ("qwertyuiopasdfghjklzxcvbnm1234567890", "repeats or sequences"),
        ("Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3", "repeats or sequences"),
        ("please-change-this-to-a-random-secret-key-of-48-chars", "words"),
        ("CHANGE_ME_TO_SOMETHING_RANDOM_AND_LONG_PLEASE", "words"),
        ("ThisIsMyVeryLongAndSecureCookieKey2024!", "words"),
        ("your super secret cookie signing key goes here", "words"),
    ],
)
def test_public_or_weak_cookie_keys_are_refused_outside_development_mode(key: str | None,
                                                                         problem: str) -> None:
    with pytest.raises(ConfigError, match=f"LEADFLOW_COOKIE_KEY .*{problem}") as refused:
        _production_settings(key).require_cookie_key()
    # The message says how to make a good key and where to put it.
    assert "secrets.token_urlsafe(48)" in str(refused.value)
    assert "LEADFLOW_DEV_MODE" in str(refused.value)


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(16),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        lambda: secrets.token_urlsafe(200),
    ],
)
def test_random_cookie_keys_of_every_usual_kind_are_accepted(make_key) -> None:
    for _ in range(20):
        key = make_key()
        assert _production_settings(key).require_cookie_key() == key


def test_development_mode_signs_with_the_public_key_when_none_is_set() -> None:
    settings = Settings(_env_file=None, dev_mode=True)  # type: ignore[call-arg]
    assert settings.require_cookie_key() == DEV_COOKIE_KEY
