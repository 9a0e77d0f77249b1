"""API keys: a tenant's credentials for machines, created in Admin, the CLI or the API.

A key reads `lf_<prefix>_<secret>`. It is shown once, when created; the database keeps the
prefix (to find the key) and the SHA-256 of the secret (compared in constant time): the secret
has 256 random bits, so a plain hash is as strong as a slow one, and a copy of the table calls
the API as nobody. Each key has a name, a role (no higher than its creator's), an optional
expiry, and the time it was last used (written at most once a minute, not on every request).
A revoked or expired key is refused at once. Creating and revoking are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from core.api_tokens import Caller, CredentialRefused
from core.audit import record_audit
from core.auth import parse_role
from core.db import Database
from core.errors import NotFound, PermissionDenied, ValidationError
from core.models import ApiKey, Role
from core.permissions import Actor, Permission

KEY_PREFIX = "lf_"
PREFIX_BYTES = 6  # 12 hex characters: found by prefix, unique
SECRET_BYTES = 32
NAME_LIMIT = 120
MAX_EXPIRY_DAYS = 3650
LAST_USED_INTERVAL = timedelta(minutes=1)
ROLE_RANK = {Role.analyst: 0, Role.manager: 1, Role.admin: 2, Role.owner: 3}


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyView:
        return cls(
            id=key.id,
            name=key.name,
            role=key.role,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )


@dataclass(frozen=True)
class NewApiKey:
    """A key just created, with its secret: shown once, never stored."""

    key: ApiKeyView
    secret: str


def grantable_key_roles(actor: Actor) -> list[Role]:
    """The roles the actor may give a key: their own and those below it, highest first."""
    return sorted(
        (role for role in Role if ROLE_RANK[role] <= ROLE_RANK[actor.role]),
        key=lambda role: ROLE_RANK[role],
        reverse=True,
    )


def key_state(key: ApiKeyView, now: datetime | None = None) -> str:
    return "revoked" if key.revoked else "expired" if key.expired(now) else "active"


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def _check_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise _field(ValidationError("an API key needs a name (what uses it, e.g. 'CRM sync')"), "name")
    if len(cleaned) > NAME_LIMIT:
        raise _field(ValidationError(f"the name may have at most {NAME_LIMIT} characters"), "name")
    return cleaned


def _field(error: ValidationError, field: str) -> ValidationError:
    error.field = field  # type: ignore[attr-defined]
    return error


def create_api_key(
    db: Database,
    actor: Actor,
    *,
    name: str,
    role: str | Role,
    expires_days: float | None = None,
    now: datetime | None = None,
) -> NewApiKey:
    """A new key of the actor's tenant, with a role no higher than the actor's own."""
    actor.require(Permission.manage_api_keys)
    cleaned = _check_name(name)
    try:
        key_role = parse_role(role)
    except ValidationError as exc:
        raise _field(exc, "role") from None
    if ROLE_RANK[key_role] > ROLE_RANK[actor.role]:
        raise PermissionDenied(
            f"your role ({actor.role.value}) may not create a key with the role {key_role.value}: "
            "a key's role is at most its creator's"
        )
    if expires_days is not None and not 0 < expires_days <= MAX_EXPIRY_DAYS:
        raise _field(
            ValidationError(f"the expiry must be between 1 day and {MAX_EXPIRY_DAYS} days, or none"),
            "expires_days",
        )
    now = now or datetime.now(UTC)
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        key = ApiKey(
            name=cleaned,
            role=key_role.value,
            prefix=prefix,
            secret_hash=_secret_hash(secret),
            created_at=now,
            created_by_user_id=actor.user_id,
            expires_at=now + timedelta(days=expires_days) if expires_days is not None else None,
        )
        session.add(key)
        session.flush()
        record_audit(
            session,
            tenant_id=actor.tenant_id,
            user_id=actor.user_id,
            action="create",
            entity="api_key",
            entity_id=key.id,
            details={"name": cleaned, "role": key_role.value, "prefix": prefix, "by": actor.username},
        )
        view = ApiKeyView.of(key)
    return NewApiKey(key=view, secret=f"{KEY_PREFIX}{prefix}_{secret}")


def list_api_keys(db: Database, actor: Actor) -> list[ApiKeyView]:
    """The tenant's keys, newest first, revoked ones included (their secrets are never shown)."""
    actor.require(Permission.manage_api_keys)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        keys = session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc()))
        return [ApiKeyView.of(key) for key in keys]


def get_api_key(db: Database, actor: Actor, key_id: int) -> ApiKeyView:
    actor.require(Permission.manage_api_keys)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"API key {key_id} does not exist")
        return ApiKeyView.of(key)


def revoke_api_key(
    db: Database,
    actor: Actor,
    *,
    key_id: int | None = None,
    prefix: str | None = None,
    now: datetime | None = None,
) -> ApiKeyView:
    """Revoke a key (by id or by prefix): refused at once from the next request. Revoking a
    revoked key changes nothing."""
    actor.require(Permission.manage_api_keys)
    now = now or datetime.now(UTC)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        if key_id is not None:
            key = session.get(ApiKey, key_id)
            name = f"API key {key_id}"
        else:
            cleaned = (prefix or "").strip().removeprefix(KEY_PREFIX).split("_")[0]
            key = session.scalars(select(ApiKey).where(ApiKey.prefix == cleaned)).one_or_none()
            name = f"API key with prefix '{prefix}'"
        if key is None:
            raise NotFound(f"{name} does not exist")
        if ROLE_RANK[Role(key.role)] > ROLE_RANK[actor.role]:
            raise PermissionDenied(
                f"your role ({actor.role.value}) may not revoke a key with the role {key.role}"
            )
        if key.revoked_at is None:
            key.revoked_at = now
            record_audit(
                session,
                tenant_id=actor.tenant_id,
                user_id=actor.user_id,
                action="revoke",
                entity="api_key",
                entity_id=key.id,
                details={"name": key.name, "prefix": key.prefix, "by": actor.username},
            )
        return ApiKeyView.of(key)


def api_key_caller(db: Database, credential: str, *, now: datetime | None = None) -> Caller:
    """The caller of a live key: `CredentialRefused` for an unknown, wrong, revoked or expired one."""
    now = now or datetime.now(UTC)
    parts = credential.removeprefix(KEY_PREFIX).split("_", 1)
    if not looks_like_api_key(credential) or len(parts) != 2 or not all(parts):
        raise CredentialRefused("the API key is not valid")
    prefix, secret = parts
    # A system session: the key is what names the tenant.
    with db.session(system=True, read_only=True) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
        # Compared in constant time; an unknown prefix costs the same hash.
        expected = key.secret_hash if key is not None else _secret_hash("")
        genuine = hmac.compare_digest(expected, _secret_hash(secret)) and key is not None
        if key is None or not genuine:
            raise CredentialRefused("the API key is not valid")
        if key.revoked_at is not None:
            raise CredentialRefused("the API key was revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise CredentialRefused("the API key has expired; an admin can create a new one")
        actor = Actor(
            user_id=None,
            tenant_id=key.tenant_id,
            role=Role(key.role),
            username=f"api-key:{key.name}",
            name=key.name,
        )
        stale = key.last_used_at is None or now - key.last_used_at >= LAST_USED_INTERVAL
        key_id = key.id
    if stale:
        # At most one write a minute per key; the condition keeps replicas from all writing it.
        with db.session(system=True) as session, session.begin():
            session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_INTERVAL),
                )
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )
    return Caller(actor=actor, credential=f"key:{key_id}")
