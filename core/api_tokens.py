"""API sign-ins: short-lived JWT access tokens and rotating, revocable refresh tokens.

`sign_in_api` checks a username and password with core.auth.authenticate (the dashboard's
lockout, in the database) and starts a sign-in: a family of refresh tokens and an access token
naming it. The access token is a JWT (HS256, a key derived from the cookie key) that lives
LEADFLOW_API_TOKEN_MINUTES; the refresh token is random, stored as its SHA-256 only, and used up
by `refresh_api_tokens`, which answers a new pair. A used refresh token presented again was
copied: the whole family is revoked. `revoke_api_token` ends a family on request.

`access_token_caller` reads the user by primary key on every request, so a deactivated or
locked account, a revoked sign-in or a changed role takes effect at once, not at the token's
expiry: the token says who, the database says what they may do now.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.auth import authenticate
from core.config import Settings
from core.db import Database
from core.errors import LoginRefused
from core.models import ApiRefreshToken, User
from core.permissions import Actor
from core.sign_in import actor_of

ACCESS_TOKEN_ALGORITHM = "HS256"
ACCESS_TOKEN_AUDIENCE = "leadflow-api"
_KEY_LABEL = b"leadflow api access tokens v1"


class CredentialRefused(LoginRefused):
    """A request's credential is missing, malformed, expired or revoked (401)."""


class RevokedReason:
    revoked = "revoked"
    reused = "reused"
    signed_out = "signed_out"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    token_type: str = "bearer"


@dataclass(frozen=True)
class Caller:
    """Who calls the API: the actor services see, and the credential limits are counted by."""

    actor: Actor
    credential: str  # "user:<id>" or "key:<id>"


def _signing_key(settings: Settings) -> bytes:
    # Derived, not the cookie key itself: a sign-in cookie is never an access token, nor the reverse.
    return hmac.new(settings.require_cookie_key().encode(), _KEY_LABEL, hashlib.sha256).digest()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def access_token_lifetime(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.api_token_minutes)


def _access_token(settings: Settings, user: User, family: str, now: datetime) -> str:
    claims = {
        "sub": str(user.id),
        "tid": user.tenant_id,
        "sid": family,
        "aud": ACCESS_TOKEN_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + access_token_lifetime(settings)).timestamp()),
    }
    return jwt.encode(claims, _signing_key(settings), algorithm=ACCESS_TOKEN_ALGORITHM)


def _new_refresh_token(session: Session, settings: Settings, user: User, family: str, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        ApiRefreshToken(
            tenant_id=user.tenant_id,
            user_id=user.id,
            family=family,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=settings.api_refresh_token_days),
        )
    )
    return token


def _pair(session: Session, settings: Settings, user: User, family: str, now: datetime) -> TokenPair:
    return TokenPair(
        access_token=_access_token(settings, user, family, now),
        refresh_token=_new_refresh_token(session, settings, user, family, now),
        expires_in=int(access_token_lifetime(settings).total_seconds()),
    )


def _refuse_user(user: User | None, now: datetime) -> str | None:
    if user is None or not user.active:
        return "this account no longer exists or is deactivated; ask an admin"
    if user.locked_until is not None and user.locked_until > now:
        return "this account is locked after too many wrong passwords; sign in again later"
    return None


def start_api_sign_in(
    db: Database, settings: Settings, actor: Actor, *, now: datetime | None = None
) -> TokenPair:
    """A new sign-in family for an authenticated person: an access token and a refresh token."""
    if actor.user_id is None:
        raise LoginRefused("only a person signs in; machines use an API key")
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = session.get(User, actor.user_id)
        refusal = _refuse_user(user, now)
        if refusal is not None or user is None:
            raise LoginRefused(refusal or "")
        return _pair(session, settings, user, secrets.token_hex(16), now)


def sign_in_api(
    db: Database,
    settings: Settings,
    username: str,
    password: str,
    *,
    organisation: str | None = None,
    now: datetime | None = None,
) -> TokenPair:
    """The OAuth2 password flow: the dashboard's login check and lockout, then a new sign-in.

    An account whose password must be replaced (a temporary one, or one below today's policy)
    gets no token: the dashboard's password form comes first.
    """
    actor = authenticate(
        db,
        username,
        password,
        max_failures=settings.login_max_failures,
        lock_minutes=settings.login_lock_minutes,
        organisation=organisation,
        now=now,
    )
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        must_change = session.scalar(select(User.password_change_required).where(User.id == actor.user_id))
    if must_change:
        raise LoginRefused("this account must choose a new password first: sign in to the dashboard")
    return start_api_sign_in(db, settings, actor, now=now)


def _revoke_family(session: Session, family: str, reason: str, now: datetime) -> None:
    session.execute(
        update(ApiRefreshToken)
        .where(ApiRefreshToken.family == family, ApiRefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


def refresh_api_tokens(
    db: Database, settings: Settings, refresh_token: str, *, now: datetime | None = None
) -> TokenPair:
    """A new pair for a live refresh token, which is used up; a used one revokes its family."""
    now = now or datetime.now(UTC)
    refused: str | None = None
    # A system session: the token is what names the tenant (as a sign-in's username does).
    with db.session(system=True) as session, session.begin():
        row = session.scalars(
            select(ApiRefreshToken)
            .where(ApiRefreshToken.token_hash == _token_hash(refresh_token))
            .with_for_update()
        ).one_or_none()
        if row is None:
            refused = "the refresh token is not valid; sign in again"
        elif row.revoked_at is not None:
            refused = "the refresh token was revoked; sign in again"
        elif row.used_at is not None:
            # Rotated already: someone else holds a copy. Nobody in the family may go on.
            _revoke_family(session, row.family, RevokedReason.reused, now)
            refused = "the refresh token was used already, so this sign-in is revoked; sign in again"
        elif row.expires_at <= now:
            refused = "the refresh token has expired; sign in again"
        else:
            user = session.get(User, row.user_id)
            refused = _refuse_user(user, now)
            if refused is None and user is not None:
                row.used_at = now
                pair = _pair(session, settings, user, row.family, now)
    # Raised after the transaction, so that a family revoked for reuse stays revoked.
    if refused is not None:
        raise CredentialRefused(refused)
    return pair


def revoke_api_token(db: Database, settings: Settings, token: str, *, now: datetime | None = None) -> bool:
    """End the sign-in of a refresh or access token (RFC 7009); False when it names none."""
    now = now or datetime.now(UTC)
    family = _family_of_access_token(settings, token)
    with db.session(system=True) as session, session.begin():
        if family is None:
            family = session.scalar(
                select(ApiRefreshToken.family).where(ApiRefreshToken.token_hash == _token_hash(token))
            )
        if family is None:
            return False
        _revoke_family(session, family, RevokedReason.revoked, now)
        return True


def _claims(settings: Settings, token: str, *, verify_exp: bool, now: datetime) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token,
        _signing_key(settings),
        algorithms=[ACCESS_TOKEN_ALGORITHM],
        audience=ACCESS_TOKEN_AUDIENCE,
        options={"verify_exp": False, "require": ["sub", "tid", "sid", "exp"]},
    )
    expires = claims["exp"]
    if verify_exp and (not isinstance(expires, int | float) or expires <= now.timestamp()):
        raise jwt.ExpiredSignatureError("expired")
    return claims


def _family_of_access_token(settings: Settings, token: str) -> str | None:
    try:
        family = _claims(settings, token, verify_exp=False, now=datetime.now(UTC))["sid"]
    except jwt.InvalidTokenError:
        return None
    return family if isinstance(family, str) else None


def access_token_caller(
    db: Database, settings: Settings, token: str, *, now: datetime | None = None
) -> Caller:
    """The caller of a genuine, unexpired access token whose sign-in and account are live.

    Two primary-key-sized reads: the user (active, not locked, their role now) and whether the
    sign-in's family was revoked.
    """
    now = now or datetime.now(UTC)
    try:
        claims = _claims(settings, token, verify_exp=True, now=now)
    except jwt.ExpiredSignatureError:
        raise CredentialRefused(
            "the access token has expired; get a new one with the refresh token"
        ) from None
    except jwt.InvalidTokenError:
        raise CredentialRefused("the access token is not valid") from None
    subject, tenant_id, family = claims["sub"], claims["tid"], claims["sid"]
    if not (
        isinstance(subject, str) and subject.isdigit() and type(tenant_id) is int and isinstance(family, str)
    ):
        raise CredentialRefused("the access token is not valid")
    with db.session(tenant_id=tenant_id, read_only=True) as session:
        user = session.get(User, int(subject))
        revoked = session.scalar(
            select(ApiRefreshToken.id)
            .where(ApiRefreshToken.family == family, ApiRefreshToken.revoked_at.is_not(None))
            .limit(1)
        )
        refusal = _refuse_user(user, now)
        if refusal is not None or user is None:
            raise CredentialRefused(refusal or "")
        if revoked is not None:
            raise CredentialRefused("this sign-in was revoked; sign in again")
        return Caller(actor=actor_of(user), credential=f"user:{user.id}")


def api_token_housekeeping(db: Database, *, now: datetime | None = None) -> int:
    """Delete refresh tokens that expired or were revoked over a day ago; how many."""
    from sqlalchemy import delete, or_

    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=1)
    with db.session(system=True) as session, session.begin():
        result = session.execute(
            delete(ApiRefreshToken).where(
                or_(ApiRefreshToken.expires_at < cutoff, ApiRefreshToken.revoked_at < cutoff)
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
