"""Passwords, logins with a database-backed throttle, users, and the first-owner setup."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import record_audit
from core.db import Database
from core.errors import Conflict, LoginRefused, NotFound, PermissionDenied, ValidationError
from core.models import Role, Tenant, User
from core.permissions import Actor, Permission
from core.tenants import create_tenant_in

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
BCRYPT_ROUNDS = 12
# Checked against when the username does not exist, so a wrong username costs as much time as a
# wrong password and the response time does not tell which usernames exist.
_DUMMY_HASH = bcrypt.hashpw(b"leadflow-timing-equaliser", bcrypt.gensalt(BCRYPT_ROUNDS))


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes and refuses NUL bytes; a 128-character password can be
    # 512 bytes of UTF-8. SHA-256 first, base64-encoded (44 bytes, no NUL), keeps every byte
    # significant for any allowed password.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password_policy(password)
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
    password_hash = hash_password(password)
    with db.session(system=True) as session, session.begin():
        _lock_setup(session)
        if session.scalar(select(User.id).limit(1)) is not None:
            raise Conflict("Leadflow is already set up: sign in instead")
        tenant = create_tenant_in(session, tenant_name, default_country)
        user = User(
            tenant_id=tenant.id,
            username=_check_username(username),
            name=_check_name(name),
            email=_check_email(email),
            password_hash=password_hash,
            role=Role.owner.value,
        )
        session.add(user)
        session.flush()
        record_audit(session, tenant_id=tenant.id, user_id=user.id, action="setup",
                     entity="tenant", entity_id=tenant.id, details={"owner": user.username})
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
) -> UserView:
    actor.require(Permission.manage_users)
    new_role = parse_role(role)
    if new_role is Role.owner:
        actor.require(Permission.manage_owners)
    password_hash = hash_password(password)
    login = _check_username(username)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = User(
            username=login,
            name=_check_name(name),
            email=_check_email(email),
            password_hash=password_hash,
            role=new_role.value,
        )
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            # Usernames are unique across tenants (the login form asks for no tenant).
            raise Conflict(f"username '{login}' is taken; choose another") from None
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="create",
                     entity="user", entity_id=user.id,
                     details={"username": login, "role": new_role.value})
        return UserView.of(user)


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
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="unlock",
                     entity="user", entity_id=user.id, details={"username": user.username})


def count_users(db: Database, tenant_id: int) -> int:
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        return session.scalar(select(func.count(User.id))) or 0


def authenticate(
    db: Database,
    username: str,
    password: str,
    *,
    max_failures: int,
    lock_minutes: int,
    now: datetime | None = None,
) -> Actor:
    """Check a login; raise `LoginRefused` with a message the person can act on.

    The throttle lives in the database, so it holds across sessions, browsers and processes:
    `max_failures` wrong passwords lock the username for `lock_minutes`, and while it is locked
    even the right password is refused.
    """
    now = now or datetime.now(UTC)
    login = normalise_username(username)
    # The failure count must be committed even though the login is refused, so the refusal is
    # raised only after the transaction has closed.
    with db.session(system=True) as session, session.begin():
        outcome = _check_login(session, login, password, max_failures, lock_minutes, now)
    if isinstance(outcome, str):
        raise LoginRefused(outcome)
    return outcome


def _check_login(
    session: Session, login: str, password: str, max_failures: int, lock_minutes: int,
    now: datetime,
) -> Actor | str:
    user = session.scalar(select(User).where(User.username == login).with_for_update())
    if user is None:
        bcrypt.checkpw(_prehash(password[:MAX_PASSWORD_LENGTH]), _DUMMY_HASH)
        return "wrong username or password"
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        return (
            f"too many failed logins: '{login}' is locked for {minutes} more minute"
            f"{'s' if minutes != 1 else ''}; try again later or ask an admin to unlock it"
        )
    if not verify_password(password, user.password_hash):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            record_audit(session, tenant_id=user.tenant_id, user_id=user.id, action="locked",
                         entity="user", entity_id=user.id,
                         details={"failures": user.failed_logins})
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=lock_minutes)
            return f"too many failed logins: '{login}' is locked for {lock_minutes} minutes"
        left = max_failures - user.failed_logins
        return (
            f"wrong username or password ({left} attempt{'s' if left != 1 else ''} left "
            "before the account is locked)"
        )
    if not user.active:
        return f"the account '{login}' is deactivated; ask an admin"
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return Actor(user_id=user.id, tenant_id=user.tenant_id, role=Role(user.role),
                 username=user.username, name=user.name)


def actor_for_username(db: Database, username: str) -> Actor:
    """The actor of an already signed-in user (re-read each run so a role change applies at once)."""
    with db.session(system=True, read_only=True) as session:
        user = session.scalar(select(User).where(User.username == normalise_username(username)))
        if user is None or not user.active:
            raise PermissionDenied("this account no longer exists or is deactivated")
        return Actor(user_id=user.id, tenant_id=user.tenant_id, role=Role(user.role),
                     username=user.username, name=user.name)


# The sign-in cookie holds this token: the username and when it expires, signed with
# LEADFLOW_COOKIE_KEY. The claims are those streamlit-authenticator 0.4 wrote, so a cookie issued
# before Leadflow signed its own still restores its session.
SESSION_TOKEN_ALGORITHM = "HS256"


def session_token(username: str, key: str, expires_at: datetime) -> str:
    """The signed token of the sign-in cookie."""
    claims = {"username": username, "exp_date": expires_at.timestamp()}
    return jwt.encode(claims, key, algorithm=SESSION_TOKEN_ALGORITHM)


def username_from_session_token(token: str | None, key: str, *, now: datetime | None = None) -> str | None:
    """The username of a valid, unexpired token; None for a missing, forged or expired one.

    The account itself is checked by the caller (actor_for_username): a token outlives neither
    a deactivation nor a lock.
    """
    if not token:
        return None
    try:
        claims = jwt.decode(token, key, algorithms=[SESSION_TOKEN_ALGORITHM])
    except jwt.InvalidTokenError:
        return None
    username, expires = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or not isinstance(expires, int | float):
        return None
    if expires <= (now or datetime.now(UTC)).timestamp():
        return None
    return username


def tenant_name(db: Database, tenant_id: int) -> str:
    with db.session(system=True, read_only=True) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant.name
