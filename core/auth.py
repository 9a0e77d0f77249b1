"""Passwords and their policy, logins with a database-backed throttle, users, and the
first-owner setup (the sign-in sessions a login starts: core.sign_in)."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.config import DATA_DIR
from core.db import Database
from core.errors import Conflict, LoginRefused, NotFound, PermissionDenied, ValidationError
from core.models import Role, SessionRevocation, Tenant, User
from core.permissions import Actor, Permission
from core.sign_in import actor_of, revoke_user_sessions
from core.tenants import create_tenant_in, tenant_named

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
# zxcvbn's estimate of the guesses a password needs, as a power of ten: 10^8 is its score 3,
# "safely unguessable" against an online attack and slow against an offline one on bcrypt.
MIN_PASSWORD_GUESSES_LOG10 = 8.0
COMMON_PASSWORDS_FILE = DATA_DIR / "common_passwords.txt"
# A username this long is refused anywhere in a password; a shorter one only as a word of its own.
MIN_USERNAME_IN_WORD = 5
# The first word an attacker adds to a list of guesses for this site.
PRODUCT_NAME = "leadflow"
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
BCRYPT_ROUNDS = 12
TEMPORARY_PASSWORD_BYTES = 12  # token_urlsafe(12): 16 random characters


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes and refuses NUL bytes; a 128-character password can be
    # 512 bytes of UTF-8. SHA-256 first, base64-encoded (44 bytes, no NUL), keeps every byte
    # significant for any allowed password.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    # Checked against when the username does not exist, at the cost of a real hash, so a wrong
    # username takes as long as a wrong password and the answer's timing names no account.
    return bcrypt.hashpw(b"leadflow-timing-equaliser", bcrypt.gensalt(rounds))


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of the most common passwords (data/common_passwords.txt), lower-case."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def _squeezed(text: str) -> str:
    return "".join(text.split()).lower()


def _contains_username(password: str, username: str) -> bool:
    name = normalise_username(username)
    if len(name) >= MIN_USERNAME_IN_WORD:
        return name in _squeezed(password)
    # A short name ("ann") is refused where it stands alone, not inside a word ("banner").
    bounded = rf"(?<![^\W\d_]){re.escape(name)}(?![^\W\d_])"
    return _squeezed(password) == name or re.search(bounded, password.lower()) is not None


def check_password_policy(password: str, *, username: str | None = None) -> None:
    """Refuse a password a person could set but should not: too short (spaces at the ends or
    repeated do not count), too long, containing the username, common, or easy to guess."""
    if len(" ".join(password.split())) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters, not counting "
            "spaces at the ends or spaces in a row"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    if username and _contains_username(password, username):
        raise ValidationError("the password must not contain the username")
    if PRODUCT_NAME in _squeezed(password):
        raise ValidationError(f"the password must not contain the word '{PRODUCT_NAME}'")
    if password.strip().lower() in common_passwords() or _squeezed(password) in common_passwords():
        raise ValidationError("this password is one of the most common ones; choose another")
    from zxcvbn import zxcvbn  # imported here: only a password being set needs its word lists

    estimate = zxcvbn(password, max_length=MAX_PASSWORD_LENGTH)
    if estimate["guesses_log10"] < MIN_PASSWORD_GUESSES_LOG10:
        hint = estimate["feedback"]["warning"] or "it is made of common words, names, dates or patterns"
        raise ValidationError(
            f"this password is easy to guess ({hint.rstrip('.').lower()}); add words that are "
            "not related to each other, or make it longer"
        )


def hash_password(password: str) -> str:
    """The bcrypt hash of a password (the policy is the caller's: `check_password_policy`)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))
    except ValueError:  # a malformed stored hash is a failed check, not a crash
        return False


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _check_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME_PATTERN.match(name):
        raise ValidationError(
            f"username '{username}' is not valid: use 3 to 64 letters, digits, dots, dashes or "
            "underscores, starting with a letter or digit"
        )
    return name


def _check_email(email: str | None) -> str | None:
    if not email or not email.strip():
        return None
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(f"email '{email}' is not valid: {exc}") from exc


def parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(f"role '{role}' is not one of: {allowed}") from None


@dataclass(frozen=True)
class UserView:
    id: int
    tenant_id: int
    username: str
    name: str
    email: str | None
    role: str
    active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    password_change_required: bool = False

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            id=user.id,
            tenant_id=user.tenant_id,
            username=user.username,
            name=user.name,
            email=user.email,
            role=user.role,
            active=user.active,
            locked_until=user.locked_until,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
            password_change_required=bool(user.password_change_required),
        )


def has_any_user(db: Database) -> bool:
    with db.session(system=True, read_only=True) as session:
        return session.scalar(select(User.id).limit(1)) is not None


def _lock_setup(session: Session) -> None:
    # Two first-owner forms submitted at once must not both win. SQLite's BEGIN IMMEDIATE
    # already serialises writers; PostgreSQL needs a transaction-scoped advisory lock.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(724001)"))


def create_first_owner(
    db: Database,
    *,
    tenant_name: str,
    default_country: str,
    username: str,
    name: str,
    email: str | None,
    password: str,
) -> UserView:
    """Create the first tenant and its owner; refused once any user exists."""
    check_password_policy(password, username=username)
    password_hash = hash_password(password)
    with db.session(system=True) as session, session.begin():
        _lock_setup(session)
        if session.scalar(select(User.id).limit(1)) is not None:
            raise Conflict("Leadflow is already set up: sign in instead")
        tenant = create_tenant_in(session, tenant_name, default_country)
        user = add_user_in(session, tenant.id, username=username, name=name, email=email,
                           role=Role.owner, password_hash=password_hash)
        record_audit(
            session,
            tenant_id=tenant.id,
            user_id=user.id,
            action="setup",
            entity="tenant",
            entity_id=tenant.id,
            details={"owner": user.username},
        )
        return UserView.of(user)


def _check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError("a name is required")
    if len(cleaned) > 120:
        raise ValidationError("the name may have at most 120 characters")
    return cleaned


def create_user(
    db: Database,
    actor: Actor,
    *,
    username: str,
    name: str,
    email: str | None,
    role: str | Role,
    password: str,
    password_change_required: bool = False,
) -> UserView:
    """Add a user to the actor's tenant; `password_change_required` for a one-time password."""
    actor.require(Permission.manage_users)
    new_role = parse_role(role)
    if new_role is Role.owner:
        actor.require(Permission.manage_owners)
    login = _check_username(username)
    check_password_policy(password, username=login)
    password_hash = hash_password(password)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = add_user_in(session, actor.tenant_id, username=login, name=name, email=email,
                           role=new_role, password_hash=password_hash,
                           password_change_required=password_change_required)
        audit_user_change(session, actor, "create", user, {"role": new_role.value})
        return UserView.of(user)


def add_user_in(
    session: Session,
    tenant_id: int,
    *,
    username: str,
    name: str,
    email: str | None,
    role: Role,
    password_hash: str,
    password_change_required: bool = False,
) -> User:
    """Add a user to a tenant inside the caller's transaction (the caller checks permissions and
    the password, and writes the audit log)."""
    login = _check_username(username)
    user = User(
        tenant_id=tenant_id,
        username=login,
        name=_check_name(name),
        email=_check_email(email),
        password_hash=password_hash,
        role=role.value,
        password_change_required=password_change_required,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # Unique per tenant: another organisation's user of this name is no obstacle.
        raise Conflict(f"username '{login}' is taken in this organisation; choose another") from None
    return user


def audit_user_change(
    session: Session, actor: Actor, action: str, user: User, details: dict[str, Any] | None = None
) -> None:
    """The audit entry of a change an actor made to a user, naming the user (and `details`)."""
    record_audit(
        session,
        tenant_id=actor.tenant_id,
        user_id=actor.user_id,
        action=action,
        entity="user",
        entity_id=user.id,
        details={"username": user.username, **(details or {})},
    )


def list_users(db: Database, actor: Actor) -> list[UserView]:
    actor.require(Permission.manage_users)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        users = session.scalars(select(User).order_by(User.username))
        return [UserView.of(u) for u in users]


def unlock_user(db: Database, actor: Actor, user_id: int) -> None:
    actor.require(Permission.manage_users)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        user.locked_until = None
        user.failed_logins = 0
        audit_user_change(session, actor, "unlock", user)


def user_id_by_username(db: Database, tenant_id: int, username: str) -> int:
    """The id of a tenant's user by login name (any spelling of it)."""
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        user_id = session.scalar(select(User.id).where(User.username == normalise_username(username)))
    if user_id is None:
        raise NotFound(f"user '{username}' does not exist in this tenant")
    return user_id


def count_users(db: Database, tenant_id: int) -> int:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        return session.scalar(select(func.count(User.id))) or 0


def login_refused_message(max_failures: int, lock_minutes: int) -> str:
    """The one answer to a refused sign-in, whether the username exists, the password is wrong or
    the account is locked: a different answer would tell a stranger which usernames exist."""
    return (
        f"wrong username or password (after {max_failures} wrong passwords in a row an account is "
        f"locked for {lock_minutes} minutes; an admin can unlock it sooner)"
    )


AMBIGUOUS_USERNAME = "this username exists in more than one organisation: enter yours"


def authenticate(
    db: Database,
    username: str,
    password: str,
    *,
    max_failures: int,
    lock_minutes: int,
    organisation: str | None = None,
    now: datetime | None = None,
) -> Actor:
    """Check a login; raise `LoginRefused` with a message the person can act on.

    Usernames are unique per organisation (tenant): `organisation`, the tenant's name in any
    case, picks the account when the username is in several; without it such a login is refused
    with AMBIGUOUS_USERNAME, before any password is checked (so that answer tells nothing about
    the password, and counts against no account). An unknown organisation gets the same answer
    as a wrong password: a stranger learns no organisation's name.

    The throttle lives in the database, so it holds across sessions, browsers and processes:
    `max_failures` wrong passwords lock the account for `lock_minutes` (and end its sessions),
    and while it is locked even the right password is refused. Every attempt costs one bcrypt
    check and gets the same answer, so neither the message nor the time taken tells whether the
    username exists or is locked. Only the right password learns that an account is deactivated.
    """
    now = now or datetime.now(UTC)
    login = normalise_username(username)
    # The failure count must be committed even though the login is refused, so the refusal is
    # raised only after the transaction has closed.
    with db.session(system=True) as session, session.begin():
        outcome = _check_login(session, login, password, organisation, max_failures, lock_minutes, now)
    if isinstance(outcome, str):
        raise LoginRefused(outcome)
    return outcome


def _check_login(
    session: Session,
    login: str,
    password: str,
    organisation: str | None,
    max_failures: int,
    lock_minutes: int,
    now: datetime,
) -> Actor | str:
    refused = login_refused_message(max_failures, lock_minutes)
    # A system session: the tenant is what the sign-in finds out (row-level security and the
    # tenant guard would hide every account from a tenant session).
    query = select(User).where(User.username == login)
    if organisation and organisation.strip():
        query = query.join(Tenant, Tenant.id == User.tenant_id).where(tenant_named(organisation))
    users = session.scalars(query.order_by(User.id).limit(2).with_for_update(of=User)).all()
    if len(users) != 1:
        bcrypt.checkpw(_prehash(password[:MAX_PASSWORD_LENGTH]), _dummy_hash(BCRYPT_ROUNDS))
        return AMBIGUOUS_USERNAME if users else refused
    user = users[0]
    right_password = verify_password(password, user.password_hash)
    if user.locked_until is not None and user.locked_until > now:
        return refused
    if not right_password:
        _count_failure(session, user, max_failures, lock_minutes, now)
        return refused
    if not user.active:
        return f"the account '{login}' is deactivated; ask an admin"
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if not user.password_change_required:
        # A password set before today's policy still signs in, once: then it must be replaced.
        try:
            check_password_policy(password, username=user.username)
        except ValidationError:
            user.password_change_required = True
    return actor_of(user)


def _count_failure(session: Session, user: User, max_failures: int, lock_minutes: int, now: datetime) -> None:
    """One more wrong password; the last one allowed locks the account and ends its sessions."""
    user.failed_logins += 1
    if user.failed_logins < max_failures:
        return
    record_audit(
        session,
        tenant_id=user.tenant_id,
        user_id=user.id,
        action="locked",
        entity="user",
        entity_id=user.id,
        details={"failures": user.failed_logins},
    )
    user.failed_logins = 0
    user.locked_until = now + timedelta(minutes=lock_minutes)
    revoke_user_sessions(session, user.id, SessionRevocation.locked, now=now)


# --- changing and resetting passwords ------------------------------------------------------------


def change_own_password(
    db: Database,
    actor: Actor,
    *,
    current_password: str,
    new_password: str,
    max_failures: int,
    lock_minutes: int,
    now: datetime | None = None,
) -> None:
    """A person changes their own password, proving the current one; every session then ends.

    A wrong current password counts as a failed login (so a stolen session cannot guess the
    password freely): the last one allowed locks the account and ends its sessions.
    """
    if actor.user_id is None:
        raise PermissionDenied("only a person has a password to change")
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = session.get(User, actor.user_id, with_for_update=True)
        if user is None or not user.active:
            raise PermissionDenied("this account no longer exists or is deactivated")
        if not verify_password(current_password, user.password_hash):
            _count_failure(session, user, max_failures, lock_minutes, now)
            wrong: str | None = "the current password is wrong; type it again"
        else:
            wrong = None
            if new_password == current_password:
                raise ValidationError("the new password must differ from the current one")
            check_password_policy(new_password, username=user.username)
            _replace_password(session, actor, user, new_password, temporary=False,
                              reason=SessionRevocation.password_changed, action="change_password", now=now)
    # Raised after the transaction, so the failure count is kept.
    if wrong is not None:
        raise ValidationError(wrong)


@dataclass(frozen=True)
class PasswordReset:
    """A reset user and the temporary password, shown once and stored only as a hash."""

    user: UserView
    temporary_password: str


def _replace_password(
    session: Session,
    actor: Actor,
    user: User,
    password: str,
    *,
    temporary: bool,
    reason: SessionRevocation,
    action: str,
    now: datetime,
) -> None:
    """A new password for `user`: failures forgotten, the account unlocked, every sign-in ended,
    audited. A temporary one must be replaced at the next sign-in."""
    user.password_hash = hash_password(password)
    user.password_change_required = temporary
    user.failed_logins = 0
    user.locked_until = None
    revoke_user_sessions(session, user.id, reason, now=now)
    audit_user_change(session, actor, action, user)


def reset_password(db: Database, actor: Actor, user_id: int, *, now: datetime | None = None) -> PasswordReset:
    """An admin gives a user a random temporary password, to be replaced at the next sign-in.

    The reset unlocks the account and ends every session of it. Only owners reset owners; a
    person changes their own password on the Account page instead.
    """
    actor.require(Permission.manage_users)
    if user_id == actor.user_id:
        raise PermissionDenied("change your own password on the Account page instead")
    now = now or datetime.now(UTC)
    temporary = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        if user.role == Role.owner.value:
            actor.require(Permission.manage_owners)
        _replace_password(session, actor, user, temporary, temporary=True,
                          reason=SessionRevocation.password_reset, action="reset_password", now=now)
        return PasswordReset(user=UserView.of(user), temporary_password=temporary)


def tenant_name(db: Database, tenant_id: int) -> str:
    with db.session(system=True, read_only=True) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant.name
