"""Server-side sign-in sessions: the signed cookie token, the session rows, revoking them.

A sign-in creates a row of user_sessions with a random id; the cookie holds that id in a token
signed with LEADFLOW_COOKIE_KEY (HS256), and the browser session keeps the id. Every page load
looks the id up (one query on a unique index, joined to the user by primary key), so revoking
the rows ends the sign-in everywhere at the next page load. Only the id's SHA-256 is stored: a
copy of the table signs nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import PermissionDenied
from core.models import ApiRefreshToken, Role, SessionRevocation, User, UserSession
from core.permissions import Actor

# A page load refreshes a session's last-seen time at most this often (not on every rerun).
LAST_SEEN_INTERVAL = timedelta(minutes=1)


SESSION_TOKEN_ALGORITHM = "HS256"


class SessionEnded(PermissionDenied):
    """The sign-in session is unknown, expired or revoked, or its account may no longer sign in."""


@dataclass(frozen=True)
class SignIn:
    """A new sign-in session: the id the browser session keeps, and the cookie's signed token."""

    session_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    """The account behind a live session, read afresh on every page load."""

    actor: Actor
    password_change_required: bool


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def session_token(session_id: str, key: str, expires_at: datetime) -> str:
    """The signed token of the sign-in cookie: the session id and when the cookie expires."""
    claims = {"sid": session_id, "exp": int(expires_at.timestamp())}
    return jwt.encode(claims, key, algorithm=SESSION_TOKEN_ALGORITHM)


def session_id_from_token(token: str | None, key: str, *, now: datetime | None = None) -> str | None:
    """The session id of a genuine, unexpired token; None for a missing, forged or expired one.

    Whether the session is still live is the database's answer (`signed_in_user`). A token
    without a session id (from before sessions were kept on the server) names nobody: it could
    never be revoked.
    """
    if not token:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[SESSION_TOKEN_ALGORITHM],
            options={"verify_exp": False, "require": ["sid", "exp"]},
        )
    except jwt.InvalidTokenError:
        return None
    session_id, expires = claims["sid"], claims["exp"]
    if not isinstance(session_id, str) or not session_id or not isinstance(expires, int | float):
        return None
    if expires <= (now or datetime.now(UTC)).timestamp():
        return None
    return session_id


def start_session(
    db: Database, actor: Actor, *, key: str, lifetime: timedelta, now: datetime | None = None
) -> SignIn:
    """Record a new sign-in session of a just-authenticated actor."""
    if actor.user_id is None:
        raise PermissionDenied("only a person signs in")
    now = now or datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        session.add(
            UserSession(
                user_id=actor.user_id,
                token_hash=_session_hash(session_id),
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
            )
        )
    return SignIn(
        session_id=session_id, token=session_token(session_id, key, expires_at), expires_at=expires_at
    )


def signed_in_user(db: Database, session_id: str, *, now: datetime | None = None) -> SignedIn:
    """The account of a live session, or `SessionEnded`.

    Ended when the session is unknown, expired or revoked, or the account is deactivated or
    locked. The role and name are read here on every call, so a change applies at the next page
    load. The last-seen time is written at most once per LAST_SEEN_INTERVAL.
    """
    now = now or datetime.now(UTC)
    with db.session(system=True, read_only=True) as session:
        row = session.execute(
            select(
                UserSession.id, UserSession.expires_at, UserSession.revoked_at, UserSession.last_seen_at, User
            )
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == _session_hash(session_id))
        ).one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise SessionEnded("your sign-in has ended; sign in again")
        user: User = row.User
        if not user.active or (user.locked_until is not None and user.locked_until > now):
            raise SessionEnded("this account is deactivated or locked; sign in again or ask an admin")
        signed_in = SignedIn(actor=actor_of(user), password_change_required=user.password_change_required)
    if now - row.last_seen_at >= LAST_SEEN_INTERVAL:
        with db.session(system=True) as session, session.begin():
            session.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now))
    return signed_in


@dataclass(frozen=True)
class SessionView:
    """One live sign-in of a person, for their Account page."""

    signed_in_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


def live_sessions(
    db: Database, actor: Actor, *, current_session_id: str | None = None, now: datetime | None = None
) -> list[SessionView]:
    """The actor's own live sign-ins, newest first; `current` marks this browser's."""
    now = now or datetime.now(UTC)
    current = _session_hash(current_session_id) if current_session_id else None
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        rows = session.execute(
            select(
                UserSession.token_hash,
                UserSession.created_at,
                UserSession.last_seen_at,
                UserSession.expires_at,
            )
            .where(
                UserSession.user_id == actor.user_id,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > now,
            )
            .order_by(UserSession.created_at.desc(), UserSession.id.desc())
        ).all()
    return [
        SessionView(
            signed_in_at=r.created_at,
            last_seen_at=r.last_seen_at,
            expires_at=r.expires_at,
            current=r.token_hash == current,
        )
        for r in rows
    ]


def revoke_user_sessions(
    session: Session, user_id: int, reason: SessionRevocation, *, now: datetime | None = None
) -> int:
    """End every live session of a user, inside the caller's transaction; how many were live.

    The user's API sign-ins (refresh-token families, core.api_tokens) end with them: their
    access tokens name a family, checked on every request.
    """
    now = now or datetime.now(UTC)
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(ApiRefreshToken)
        .where(ApiRefreshToken.user_id == user_id, ApiRefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def sign_out(db: Database, session_id: str, *, now: datetime | None = None) -> None:
    """Sign out: end this session and every other session of its user, in every browser."""
    with db.session(system=True) as session, session.begin():
        user_id = session.scalar(
            select(UserSession.user_id).where(UserSession.token_hash == _session_hash(session_id))
        )
        if user_id is not None:
            revoke_user_sessions(session, user_id, SessionRevocation.sign_out, now=now)


def actor_of(user: User) -> Actor:
    """The actor a user signs in as."""
    return Actor(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=Role(user.role),
        username=user.username,
        name=user.name,
    )
