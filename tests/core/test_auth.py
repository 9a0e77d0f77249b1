"""Password hashing and policy, the login throttle, sign-in sessions, roles and the first-owner
setup, and the cookie-signing key."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt
import pytest
from sqlalchemy import select, update

import core.config
from core import admin
from core.auth import (
    AMBIGUOUS_USERNAME,
    MAX_PASSWORD_LENGTH,
    _prehash,
    authenticate,
    change_own_password,
    check_password_policy,
    common_passwords,
    create_first_owner,
    create_user,
    has_any_user,
    hash_password,
    login_refused_message,
    reset_password,
    verify_password,
)
from core.config import DEV_COOKIE_KEY, ROOT, ConfigError, Settings
from core.db import Database
from core.errors import Conflict, LoginRefused, NotFound, PermissionDenied, ValidationError
from core.models import AuditLog, Role, User, UserSession
from core.permissions import ROLE_PERMISSIONS, Actor, Permission
from core.sign_in import (
    SessionEnded,
    session_id_from_token,
    session_token,
    sign_out,
    signed_in_user,
    start_session,
)
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
    [
        ("short", "at least 10"),
        ("z" * (MAX_PASSWORD_LENGTH + 1), "at most 128"),
        (" " * 10, "at least 10"),
        ("\t" * 12 + "\n" * 12, "at least 10"),
        ("\u3000" * 16, "at least 10"),  # ideographic spaces
        ("   abc      ", "at least 10"),
        ("a    b    c    d    e", "at least 10"),  # spaces in a row count once: "a b c d e"
        ("Mia-the-analyst!", "username"),
        ("xx MIA xx yy zz", "username"),
        ("forever mia and ever", "username"),
        ("mia2026mia2026", "username"),
        ("Leadflow2026!", "leadflow"),
        ("my LEAD FLOW key", "leadflow"),
        ("1234567890", "most common"),
        ("qwertyuiop", "most common"),
        ("PASSWORD123", "most common"),
        ("iloveyou12", "most common"),
        ("aaaaaaaaaaaa", "easy to guess"),
        ("abcdefghijklmn", "easy to guess"),
        ("Password123!", "easy to guess"),
        ("qazwsxedcrfvtgb", "most common"),
        ("Summer2024!", "easy to guess"),
        ("qwerty123qwerty", "easy to guess"),
        ("jennifer1985", "easy to guess"),
    ],
)
def test_password_policy_refuses_with_the_reason(password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_password_policy(password, username="mia")


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "ten chars!", "  spaces around it  ", "violet-ladder-93-orbit", "é" * 4 + "ß7k!Qz"],
)
def test_password_policy_accepts_good_passwords(password: str) -> None:
    check_password_policy(password, username="mia")


@pytest.mark.parametrize(
    ("username", "password", "refused"),
    [
        ("ann", "planning banner river", False),  # a short name inside other words
        ("ann", "river ann planning", True),
        ("ann", "ANN_river_planning", True),
        ("olga.s", "violet olga.s ladder", True),
        ("mirabel", "violetMIRABELladder", True),  # a long one anywhere
        ("mirabel", "violet mira bel ladder", True),
    ],
)
def test_the_username_rule(username: str, password: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ValidationError, match="username"):
            check_password_policy(password, username=username)
    else:
        check_password_policy(password, username=username)


def test_the_bundled_common_list_is_loaded_and_read_without_case() -> None:
    common = common_passwords()
    assert len(common) > 1000
    assert all(p == p.lower() and p.strip() == p for p in common)
    assert "qwertyuiop" in common


WEAK_FOR_NEWBIE = [" " * 10, "newbie-2026-x", "1234567890"]


@pytest.mark.parametrize("password", WEAK_FOR_NEWBIE)
def test_creating_a_user_applies_the_policy(db: Database, password: str) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner)
    with pytest.raises(ValidationError):
        create_user(db, owner, username="newbie", name="N", email=None, role=Role.analyst, password=password)


@pytest.mark.parametrize("password", WEAK_FOR_NEWBIE)
def test_the_first_owner_gets_the_policy_too(db: Database, password: str) -> None:
    with pytest.raises(ValidationError):
        create_first_owner(
            db,
            tenant_name="Acme",
            default_country="US",
            username="newbie",
            name="N",
            email=None,
            password=password,
        )
    assert not has_any_user(db)


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


REFUSED = login_refused_message(5, 15)


def _locked_until(db: Database, username: str) -> datetime | None:
    with db.session(system=True, read_only=True) as s:
        return s.scalar(select(User.locked_until).where(User.username == username))


def test_five_failures_lock_and_sixth_right_password_is_refused(db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    for attempt in range(4):
        with pytest.raises(LoginRefused, match="wrong username or password"):
            _login(db, "ann", "wrong password!", T0 + timedelta(seconds=attempt))
    assert _locked_until(db, "ann") is None
    with pytest.raises(LoginRefused, match="wrong username or password"):
        _login(db, "ann", "wrong password!", T0 + timedelta(seconds=5))
    assert _locked_until(db, "ann") == T0 + timedelta(seconds=5, minutes=15)
    with pytest.raises(LoginRefused, match="wrong username or password"):
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
    with pytest.raises(LoginRefused):
        _login(db, "bob", PASSWORD, T0 + timedelta(minutes=1))
    assert _locked_until(db, "bob") == T0 + timedelta(minutes=15)


def test_success_resets_the_failure_count(db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "cyd")
    for _ in range(4):
        with pytest.raises(LoginRefused):
            _login(db, "cyd", "wrong password!", T0)
    _login(db, "cyd", PASSWORD, T0)
    for _ in range(4):
        with pytest.raises(LoginRefused):
            _login(db, "cyd", "wrong password!", T0)
    assert _locked_until(db, "cyd") is None  # four since the success: not five in a row


# -- a refused login names no account -------------------------------------------------------------


def _refusal(db: Database, username: str, password: str, now: datetime = T0) -> str:
    with pytest.raises(LoginRefused) as refused:
        _login(db, username, password, now)
    return str(refused.value)


def test_unknown_user_wrong_password_and_locked_account_get_one_message(db: Database) -> None:
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    make_actor(db, make_tenant(db, "B"), Role.analyst, "locked.one")
    for _ in range(5):
        _refusal(db, "locked.one", "wrong password!")
    answers = {
        "unknown username": _refusal(db, "nobody-here", PASSWORD),
        "unknown username, other spelling": _refusal(db, "  Ghost.User ", "x"),
        "wrong password": _refusal(db, "ann", "wrong password!"),
        "wrong password, last before the lock": _refusal(db, "ann", "wrong password!"),
        "locked, wrong password": _refusal(db, "locked.one", "wrong password!"),
        "locked, right password": _refusal(db, "locked.one", PASSWORD),
    }
    assert set(answers.values()) == {REFUSED}
    assert "ann" not in REFUSED and "left" not in REFUSED


@pytest.mark.parametrize("case", ["unknown", "wrong", "locked", "in two organisations"])
def test_every_refused_login_costs_one_bcrypt_check(db: Database, monkeypatch, case: str) -> None:
    """An unknown username is compared against a dummy hash, so it costs what a real one does."""
    make_actor(db, make_tenant(db), Role.analyst, "ann")
    if case == "in two organisations":
        make_actor(db, make_tenant(db, "Globex"), Role.analyst, "ann")
    if case == "locked":
        for _ in range(5):
            _refusal(db, "ann", "wrong password!")
    calls: list[tuple[bytes, bytes]] = []
    real_checkpw = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        calls.append((password, hashed))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    username = "nobody-here" if case == "unknown" else "ann"
    _refusal(db, username, PASSWORD if case == "locked" else "wrong password!")
    assert len(calls) == 1
    ((password, hashed),) = calls
    assert hashed.startswith(b"$2")  # a real bcrypt hash, not a shortcut
    assert password == _prehash(PASSWORD if case == "locked" else "wrong password!")


def test_a_deactivated_account_is_named_only_to_the_right_password(db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    ann = make_actor(db, owner.tenant_id, Role.analyst, "ann")
    admin.set_user_active(db, owner, ann.user_id, False)
    assert _refusal(db, "ann", "wrong password!") == REFUSED
    assert "deactivated" in _refusal(db, "ann", PASSWORD)


def test_first_owner_only_once(db: Database) -> None:
    assert not has_any_user(db)
    owner = create_first_owner(
        db,
        tenant_name="Acme",
        default_country="gb",
        username="Olga",
        name="Olga O",
        email="olga@example.com",
        password=PASSWORD,
    )
    assert (owner.username, owner.role) == ("olga", "owner")
    assert has_any_user(db)
    with pytest.raises(Conflict, match="already set up"):
        create_first_owner(
            db,
            tenant_name="Other",
            default_country="US",
            username="eve",
            name="Eve",
            email=None,
            password=PASSWORD,
        )


def test_first_owner_validation_leaves_nothing(db: Database) -> None:
    with pytest.raises(ValidationError, match="country"):
        create_first_owner(
            db,
            tenant_name="Acme",
            default_country="XX",
            username="olga",
            name="Olga",
            email=None,
            password=PASSWORD,
        )
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

    def call():
        return create_user(
            db, actor, username="newbie", name="New", email=None, role=new_role, password=PASSWORD
        )

    if allowed:
        assert call().role == new_role.value
    else:
        with pytest.raises(PermissionDenied):
            call()


def test_usernames_are_unique_per_tenant_not_across_tenants(db: Database) -> None:
    sam = make_actor(db, make_tenant(db, "A"), Role.owner, "sam")
    other = make_actor(db, make_tenant(db, "B"), Role.owner, "owner-b")
    # Another organisation's sam is no obstacle ...
    created = create_user(db, other, username="SAM", name="Sam", email=None, role=Role.analyst,
                          password=PASSWORD)
    assert (created.username, created.tenant_id) == ("sam", other.tenant_id)
    # ... but one organisation has one sam.
    with pytest.raises(Conflict) as taken:
        create_user(db, sam, username=" Sam", name="Sam", email=None, role=Role.analyst, password=PASSWORD)
    assert str(taken.value) == "username 'sam' is taken in this organisation; choose another"


OLIVIA_B_PASSWORD = "another horse battery staple"


@pytest.fixture
def two_olivias(db: Database) -> tuple[Actor, Actor]:
    """`olivia` in Acme and in Globex, each with a password of her own."""
    acme = make_actor(db, make_tenant(db, "Acme"), Role.admin, "olivia")
    globex = make_actor(db, make_tenant(db, "Globex Corp"), Role.analyst, "olivia")
    with db.session(system=True) as session, session.begin():
        session.execute(update(User).where(User.id == globex.user_id)
                        .values(password_hash=hash_password(OLIVIA_B_PASSWORD)))
    return acme, globex


def _failures(db: Database, user_id: int | None) -> int:
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(User.failed_logins).where(User.id == user_id)) or 0


def test_a_username_in_two_organisations_asks_for_the_organisation(
    db: Database, two_olivias: tuple[Actor, Actor]
) -> None:
    acme, globex = two_olivias
    # Without the organisation: asked for it, whatever the password, and no account counts a failure.
    for password in (PASSWORD, OLIVIA_B_PASSWORD, "wrong password!"):
        with pytest.raises(LoginRefused) as refused:
            authenticate(db, "Olivia", password, max_failures=5, lock_minutes=15)
        assert str(refused.value) == AMBIGUOUS_USERNAME
    assert _failures(db, acme.user_id) == _failures(db, globex.user_id) == 0
    # With it (any case and spacing), each signs in to her own organisation.
    signed_in = authenticate(db, "olivia", PASSWORD, max_failures=5, lock_minutes=15, organisation=" acme ")
    assert (signed_in.user_id, signed_in.tenant_id) == (acme.user_id, acme.tenant_id)
    assert signed_in.role is Role.admin
    signed_in = authenticate(db, "olivia", OLIVIA_B_PASSWORD, max_failures=5, lock_minutes=15,
                             organisation="GLOBEX  corp")
    assert (signed_in.user_id, signed_in.tenant_id) == (globex.user_id, globex.tenant_id)


def test_the_other_organisations_password_or_an_unknown_organisation_is_a_wrong_login(
    db: Database, two_olivias: tuple[Actor, Actor]
) -> None:
    acme, globex = two_olivias
    # Acme's password offered to Globex's olivia: a wrong password for her, counted on her account.
    assert _refusal_in(db, "olivia", PASSWORD, "Globex Corp") == REFUSED
    assert (_failures(db, acme.user_id), _failures(db, globex.user_id)) == (0, 1)
    # An organisation that does not exist gets the same answer: it names no organisation.
    assert _refusal_in(db, "olivia", PASSWORD, "Initech") == REFUSED
    assert _refusal_in(db, "nobody-here", PASSWORD, "Acme") == REFUSED


def test_a_username_in_one_organisation_needs_none_and_a_wrong_one_is_refused(db: Database) -> None:
    ann = make_actor(db, make_tenant(db, "Acme"), Role.analyst, "ann")
    make_tenant(db, "Globex")
    assert authenticate(db, "ann", PASSWORD, max_failures=5, lock_minutes=15).user_id == ann.user_id
    assert authenticate(db, "ann", PASSWORD, max_failures=5, lock_minutes=15,
                        organisation="Acme").user_id == ann.user_id
    assert _refusal_in(db, "ann", PASSWORD, "Globex") == REFUSED


def _refusal_in(db: Database, username: str, password: str, organisation: str) -> str:
    with pytest.raises(LoginRefused) as refused:
        authenticate(db, username, password, max_failures=5, lock_minutes=15, organisation=organisation)
    return str(refused.value)


def test_permission_table_is_nested() -> None:
    analyst, manager, admin, owner = (
        ROLE_PERMISSIONS[r] for r in (Role.analyst, Role.manager, Role.admin, Role.owner)
    )
    assert analyst < manager < admin < owner
    assert Permission.manage_leads not in manager
    assert Permission.review_drafts not in analyst


# -- the sign-in cookie's token -----------------------------------------------------------------


def test_a_session_token_names_its_session_until_it_expires() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    token = session_token("sid-1", "k" * 32, now + timedelta(days=1))
    assert session_id_from_token(token, "k" * 32, now=now) == "sid-1"
    assert session_id_from_token(token, "k" * 32, now=now + timedelta(days=1, seconds=1)) is None


@pytest.mark.parametrize("token", [None, "", "not.a.token", "a.b"])
def test_a_missing_or_malformed_token_names_nobody(token: str | None) -> None:
    assert session_id_from_token(token, "k" * 32) is None


def test_a_token_signed_with_another_key_or_edited_names_nobody() -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    assert session_id_from_token(session_token("sid-1", "other" * 8, expires), "k" * 32) is None
    header, _, signature = session_token("sid-1", "k" * 32, expires).split(".")
    forged_claims = jwt.utils.base64url_encode(
        json.dumps({"sid": "sid-2", "exp": int(expires.timestamp())}).encode()
    ).decode()
    assert session_id_from_token(f"{header}.{forged_claims}.{signature}", "k" * 32) is None


def test_a_token_without_a_server_side_session_no_longer_signs_in() -> None:
    # The claims streamlit-authenticator 0.4 wrote (a username and an expiry): such a cookie
    # could never be revoked, so it names nobody now.
    expires = datetime.now(UTC) + timedelta(days=1)
    legacy = jwt.encode({"username": "mia", "exp_date": expires.timestamp()}, "k" * 32, algorithm="HS256")
    assert session_id_from_token(legacy, "k" * 32) is None


# -- server-side sessions -------------------------------------------------------------------------

DAY = timedelta(days=1)


def _signed_in(db: Database, username: str, *, role: Role = Role.manager, tenant: int | None = None):
    actor = make_actor(db, tenant or make_tenant(db), role, username)
    return actor, start_session(db, actor, key="k" * 32, lifetime=DAY)


def _live(db: Database, session_id: str, now: datetime | None = None) -> bool:
    try:
        signed_in_user(db, session_id, now=now)
    except SessionEnded:
        return False
    return True


def test_a_new_session_signs_in_its_user_and_is_stored_only_as_a_hash(db: Database) -> None:
    actor, sign_in = _signed_in(db, "mia")
    assert session_id_from_token(sign_in.token, "k" * 32) == sign_in.session_id
    signed_in = signed_in_user(db, sign_in.session_id)
    assert (signed_in.actor, signed_in.password_change_required) == (actor, False)
    with db.session(system=True, read_only=True) as s:
        stored = s.scalars(select(UserSession.token_hash)).all()
    assert len(stored) == 1 and sign_in.session_id not in stored[0]


def test_an_unknown_or_expired_session_is_ended(db: Database) -> None:
    _, sign_in = _signed_in(db, "mia")
    assert not _live(db, "no-such-session")
    assert _live(db, sign_in.session_id, now=sign_in.expires_at - timedelta(seconds=1))
    assert not _live(db, sign_in.session_id, now=sign_in.expires_at)


def test_signing_out_ends_every_session_of_the_user_and_no_one_elses(db: Database) -> None:
    mia, laptop = _signed_in(db, "mia")
    phone = start_session(db, mia, key="k" * 32, lifetime=DAY)
    _, other = _signed_in(db, "ann", tenant=mia.tenant_id)
    sign_out(db, laptop.session_id)
    assert not _live(db, laptop.session_id)
    assert not _live(db, phone.session_id)
    assert _live(db, other.session_id)
    # Signing in again starts a new session.
    assert _live(db, start_session(db, mia, key="k" * 32, lifetime=DAY).session_id)


def test_a_lock_ends_every_session_of_the_account_at_once(db: Database) -> None:
    _, sign_in = _signed_in(db, "mia")
    for _ in range(5):
        with pytest.raises(LoginRefused):
            authenticate(db, "mia", "wrong password!", max_failures=5, lock_minutes=15)
    assert not _live(db, sign_in.session_id)
    with db.session(system=True, read_only=True) as s:
        assert s.scalar(select(UserSession.revoked_reason)) == "locked"


def test_a_locked_account_cookie_stops_working_even_without_a_revocation(db: Database) -> None:
    """However the lock came about (another process, a manual UPDATE), the check refuses it."""
    _, sign_in = _signed_in(db, "mia")
    with db.session(system=True) as s, s.begin():
        s.execute(update(User).values(locked_until=datetime.now(UTC) + timedelta(minutes=5)))
    assert not _live(db, sign_in.session_id)


def test_deactivation_ends_every_session_and_reactivation_does_not_revive_them(db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia, sign_in = _signed_in(db, "mia", tenant=owner.tenant_id)
    admin.set_user_active(db, owner, mia.user_id, False)
    assert not _live(db, sign_in.session_id)
    admin.set_user_active(db, owner, mia.user_id, True)
    assert not _live(db, sign_in.session_id)


def test_a_role_change_applies_at_the_next_page_load_without_signing_out(db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia, sign_in = _signed_in(db, "mia", tenant=owner.tenant_id)
    admin.change_role(db, owner, mia.user_id, Role.analyst)
    assert signed_in_user(db, sign_in.session_id).actor.role is Role.analyst


def test_last_seen_is_written_at_most_once_a_minute(db: Database) -> None:
    _, sign_in = _signed_in(db, "mia")

    def last_seen() -> datetime:
        with db.session(system=True, read_only=True) as s:
            return s.scalar(select(UserSession.last_seen_at))

    created = last_seen()
    signed_in_user(db, sign_in.session_id, now=created + timedelta(seconds=59))
    assert last_seen() == created
    signed_in_user(db, sign_in.session_id, now=created + timedelta(seconds=61))
    assert last_seen() == created + timedelta(seconds=61)
    signed_in_user(db, sign_in.session_id, now=created + timedelta(seconds=90))
    assert last_seen() == created + timedelta(seconds=61)


def test_a_page_load_costs_one_query_when_last_seen_is_fresh(db: Database) -> None:
    from sqlalchemy import event

    _, sign_in = _signed_in(db, "mia")
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        signed_in_user(db, sign_in.session_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    # Statements on the tables (not a transaction's set-up): one, by the unique token hash.
    queries = [q for q in statements if "users" in q or "user_sessions" in q]
    assert len(queries) == 1 and "token_hash" in queries[0] and "UPDATE" not in queries[0].upper()


# -- changing and resetting passwords -------------------------------------------------------------


def _change(db: Database, actor, current: str, new: str) -> None:
    change_own_password(
        db, actor, current_password=current, new_password=new, max_failures=5, lock_minutes=15
    )


def _audit_actions(db: Database) -> list[str]:
    with db.session(system=True, read_only=True) as s:
        return list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_changing_ones_password_needs_the_current_one_and_ends_every_session(db: Database) -> None:
    mia, sign_in = _signed_in(db, "mia")
    _change(db, mia, PASSWORD, "violet ladder orbit 93")
    assert not _live(db, sign_in.session_id)
    assert _login(db, "mia", "violet ladder orbit 93", T0).username == "mia"
    with pytest.raises(LoginRefused):
        _login(db, "mia", PASSWORD, T0)
    assert "change_password" in _audit_actions(db)


def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failed_login(db: Database) -> None:
    mia, sign_in = _signed_in(db, "mia")
    for _ in range(4):
        with pytest.raises(ValidationError, match="current password is wrong"):
            _change(db, mia, "not my password", "violet ladder orbit 93")
    assert _live(db, sign_in.session_id)
    with pytest.raises(ValidationError, match="current password is wrong"):
        _change(db, mia, "not my password", "violet ladder orbit 93")
    assert _locked_until(db, "mia") is not None  # the fifth failure locks, and ends the session
    assert not _live(db, sign_in.session_id)
    assert "change_password" not in _audit_actions(db)


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (" " * 12, "at least 10"),
        ("1234567890", "common"),
        ("mia-mia-mia-2026", "username"),
        (PASSWORD, "differ"),
    ],
)
def test_a_new_password_must_meet_the_policy(db: Database, new: str, message: str) -> None:
    mia, sign_in = _signed_in(db, "mia")
    with pytest.raises(ValidationError, match=message):
        _change(db, mia, PASSWORD, new)
    assert _live(db, sign_in.session_id)
    assert _login(db, "mia", PASSWORD, T0).username == "mia"


def test_an_admin_reset_gives_a_one_time_password_and_ends_every_session(db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    mia, sign_in = _signed_in(db, "mia", tenant=owner.tenant_id)
    for _ in range(5):
        with pytest.raises(LoginRefused):
            _login(db, "mia", "wrong password!", datetime.now(UTC))
    reset = reset_password(db, owner, mia.user_id)
    assert reset.user.username == "mia" and len(reset.temporary_password) >= 16
    assert not _live(db, sign_in.session_id)
    with pytest.raises(LoginRefused):
        _login(db, "mia", PASSWORD, datetime.now(UTC))
    # The reset unlocks; the temporary password signs in, and a new one is required at once.
    actor = _login(db, "mia", reset.temporary_password, datetime.now(UTC))
    fresh = start_session(db, actor, key="k" * 32, lifetime=DAY)
    assert signed_in_user(db, fresh.session_id).password_change_required
    _change(db, actor, reset.temporary_password, "violet ladder orbit 93")
    assert not signed_in_user(
        db, start_session(db, actor, key="k" * 32, lifetime=DAY).session_id
    ).password_change_required
    assert _audit_actions(db)[-2:] == ["reset_password", "change_password"]


@pytest.mark.parametrize(
    ("resetter", "target", "allowed"),
    [
        (Role.owner, Role.owner, True),
        (Role.admin, Role.owner, False),
        (Role.admin, Role.manager, True),
        (Role.manager, Role.analyst, False),
    ],
)
def test_who_may_reset_whose_password(db: Database, resetter: Role, target: Role, allowed: bool) -> None:
    tenant = make_tenant(db)
    actor = make_actor(db, tenant, resetter, "resetter")
    user = make_actor(db, tenant, target, "target")
    if allowed:
        assert reset_password(db, actor, user.user_id).temporary_password
    else:
        with pytest.raises(PermissionDenied):
            reset_password(db, actor, user.user_id)


def test_a_reset_is_for_someone_else_in_the_same_tenant(db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    stranger = make_actor(db, make_tenant(db, "B"), Role.analyst, "stranger")
    with pytest.raises(PermissionDenied, match="Account page"):
        reset_password(db, owner, owner.user_id)
    with pytest.raises(NotFound):
        reset_password(db, owner, stranger.user_id)
    assert _login(db, "stranger", PASSWORD, T0).username == "stranger"


def test_an_existing_weak_password_still_signs_in_then_must_be_replaced(db: Database) -> None:
    mia = make_actor(db, make_tenant(db), Role.manager, "mia")
    with db.session(system=True) as s, s.begin():  # set before today's policy
        s.execute(update(User).values(password_hash=hash_password(" " * 10)))
    actor = _login(db, "mia", " " * 10, T0)
    sign_in = start_session(db, actor, key="k" * 32, lifetime=DAY)
    assert signed_in_user(db, sign_in.session_id).password_change_required
    _change(db, mia, " " * 10, "violet ladder orbit 93")
    assert not _live(db, sign_in.session_id)


def test_an_invited_user_must_replace_the_one_time_password(db: Database) -> None:
    owner = make_actor(db, make_tenant(db), Role.owner, "olga")
    invitation = admin.invite_user(db, owner, username="new.rep", name="", email=None, role="manager")
    actor = _login(db, "new.rep", invitation.initial_password, T0)
    sign_in = start_session(db, actor, key="k" * 32, lifetime=DAY)
    assert signed_in_user(db, sign_in.session_id).password_change_required


# -- the cookie-signing key ---------------------------------------------------------------------

EXAMPLE_SECRETS = ROOT / ".streamlit" / "secrets.toml.example"


def _production_settings(key: str | None) -> Settings:
    return Settings(_env_file=None, dev_mode=False, cookie_key=key)  # type: ignore[call-arg]


def _example_cookie_key_line() -> str:
    (line,) = [
        line for line in EXAMPLE_SECRETS.read_text().splitlines() if "cookie_key" in line and "=" in line
    ]
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
def test_public_or_weak_cookie_keys_are_refused_outside_development_mode(
    key: str | None, problem: str
) -> None:
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
