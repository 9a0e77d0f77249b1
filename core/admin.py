"""Administration: users and roles, tenant settings, provider status and the audit log.

Every change is checked against the actor's permissions here (not only in the page) and writes
the audit log in the same transaction. Listing users and unlocking reuse `core.auth`.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import audit_conditions, record_audit
from core.auth import (
    PasswordReset,
    UserView,
    add_user_in,
    audit_user_change,
    create_user,
    hash_password,
    list_users,
    parse_role,
    reset_password,
    unlock_user,
)
from core.config import Settings
from core.db import Database
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.models import AuditLog, Role, SessionRevocation, User
from core.permissions import Actor, Permission
from core.sign_in import revoke_user_sessions
from core.tenant_settings import (
    EMPTY_PLAYBOOK,
    TenantSettings,
    get_tenant_settings,
    microusd_as_dollars_text,
    price_override_rows,
    price_overrides_from_rows,
    update_tenant_settings,
)
from core.tenants import (
    TenantView,
    create_tenant_in,
    installation_tenant_id,
    list_tenants,
)

# list_users, unlock_user and reset_password live in core.auth and the tenant settings in
# core.tenant_settings; they are re-exported so the Admin page has one module.
__all__ = [
    "EMPTY_PLAYBOOK",
    "AuditFilterOptions",
    "AuditPage",
    "Invitation",
    "NewOrganisation",
    "PasswordReset",
    "ProviderStatus",
    "TenantSettings",
    "audit_filter_options",
    "change_role",
    "create_organisation",
    "get_tenant_settings",
    "invite_user",
    "list_organisations",
    "list_users",
    "microusd_as_dollars_text",
    "price_override_rows",
    "price_overrides_from_rows",
    "provider_status",
    "provider_status_table",
    "query_audit_log",
    "reset_password",
    "set_user_active",
    "unlock_user",
    "update_tenant_settings",
    "user_state",
    "users_table",
]

INITIAL_PASSWORD_BYTES = 12  # token_urlsafe(12): 16 characters, above the password policy
AUDIT_PAGE_SIZES = (25, 50, 100, 200)


# --- users -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """A new user and the initial password, which is shown once and stored only as a hash."""

    user: UserView
    initial_password: str


def invite_user(
    db: Database, actor: Actor, *, username: str, name: str, email: str | None, role: str | Role
) -> Invitation:
    """Create a user with a random one-time initial password (only owners may invite owners).

    The user replaces it with their own at the first sign-in.
    """
    password = secrets.token_urlsafe(INITIAL_PASSWORD_BYTES)
    user = create_user(db, actor, username=username, name=name or username, email=email,
                       role=role, password=password, password_change_required=True)
    return Invitation(user=user, initial_password=password)


@dataclass(frozen=True)
class NewOrganisation:
    """An organisation created from the dashboard, and its first user's one-time password."""

    tenant: TenantView
    invitation: Invitation


# The first user of a new organisation runs it: its admin, or its owner (who may also make owners).
FIRST_USER_ROLES = (Role.admin, Role.owner)


def create_organisation(
    db: Database,
    actor: Actor,
    *,
    name: str,
    default_country: str,
    username: str,
    user_name: str,
    email: str | None,
    role: str | Role = Role.admin,
) -> NewOrganisation:
    """An owner of the installation creates another organisation (tenant) with its first user,
    who gets a one-time password, as an invited user does. All or nothing; audited in the
    owner's organisation and in the new one."""
    _require_installation_owner(db, actor)
    first_role = parse_role(role)
    if first_role not in FIRST_USER_ROLES:
        raise ValidationError(
            "the first user of an organisation is its admin or its owner: they invite the rest"
        )
    password = secrets.token_urlsafe(INITIAL_PASSWORD_BYTES)
    password_hash = hash_password(password)
    # A system session: the new tenant is not the actor's, and its name is unique across all.
    with db.session(system=True) as session, session.begin():
        tenant = create_tenant_in(session, name, default_country)
        user = add_user_in(session, tenant.id, username=username, name=user_name or username, email=email,
                           role=first_role, password_hash=password_hash, password_change_required=True)
        first = {"first_user": user.username, "role": first_role.value}
        record_audit(session, tenant_id=actor.tenant_id, user_id=actor.user_id, action="tenants.create",
                     entity="tenant", entity_id=tenant.id,
                     details={"name": tenant.name, "default_country": tenant.default_country, **first})
        # The creator belongs to another organisation: named, not linked, in the new one's log.
        record_audit(session, tenant_id=tenant.id, user_id=None, action="setup", entity="tenant",
                     entity_id=tenant.id, details={"created_by": actor.username, **first})
        view = TenantView(tenant.id, tenant.name, tenant.default_country, 1, tenant.created_at)
        return NewOrganisation(tenant=view, invitation=Invitation(UserView.of(user), password))


def list_organisations(db: Database, actor: Actor) -> list[TenantView]:
    """Every organisation of the installation, with its number of users, for its owners."""
    _require_installation_owner(db, actor)
    return list_tenants(db)


def manages_organisations(db: Database, actor: Actor) -> bool:
    """Whether `actor` is an owner of the installation's own organisation (the first one): only
    they see the other organisations; another tenant's owner must not learn their names."""
    return actor.can(Permission.manage_tenants) and actor.tenant_id == installation_tenant_id(db)


def _require_installation_owner(db: Database, actor: Actor) -> None:
    actor.require(Permission.manage_tenants)
    if not manages_organisations(db, actor):
        raise PermissionDenied(
            "only the owners of the installation's own organisation create or list organisations"
        )


def _user_in_tenant(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _lock_active_owner_ids(session: Session) -> list[int]:
    # FOR UPDATE serialises two owners demoting each other at once on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already serialises every writer.
    return list(
        session.scalars(
            select(User.id)
            .where(User.role == Role.owner.value, User.active.is_(True))
            .with_for_update()
        )
    )


def _refuse_losing_last_owner(session: Session, user: User, what: str) -> None:
    if user.role == Role.owner.value and user.active:
        owners = _lock_active_owner_ids(session)
        if owners == [user.id]:
            raise Conflict(
                f"cannot {what} '{user.username}': they are the last active owner; "
                "make another user owner first"
            )


def change_role(
    db: Database, actor: Actor, user_id: int, role: str | Role, *, check_only: bool = False
) -> UserView:
    """Give a user (yourself included) another role; only owners make or unmake owners.

    An owner may step down once another owner is active; the last active owner may not.
    With `check_only`, raise what the change would raise and change nothing (a confirmation
    is asked only for a change that can be made).
    """
    actor.require(Permission.manage_users)
    new_role = parse_role(role)
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = _user_in_tenant(session, user_id)
        old_role = Role(user.role)
        if old_role is new_role:
            return UserView.of(user)
        if Role.owner in (old_role, new_role):
            actor.require(Permission.manage_owners)
            _refuse_losing_last_owner(session, user, f"make {new_role.value} of")
        if check_only:
            return UserView.of(user)
        user.role = new_role.value
        audit_user_change(session, actor, "change_role", user, {"from": old_role.value, "to": new_role.value})
        return UserView.of(user)


def set_user_active(db: Database, actor: Actor, user_id: int, active: bool) -> UserView:
    """Deactivate (sign-in refused, every session ended, the row and its history kept) or
    reactivate a user."""
    actor.require(Permission.manage_users)
    if user_id == actor.user_id and not active:
        raise PermissionDenied("you cannot deactivate yourself; ask another admin or owner")
    with db.session(tenant_id=actor.tenant_id) as session, session.begin():
        user = _user_in_tenant(session, user_id)
        if user.active == active:
            return UserView.of(user)
        if user.role == Role.owner.value:
            actor.require(Permission.manage_owners)
            if not active:
                _refuse_losing_last_owner(session, user, "deactivate")
        user.active = active
        if active:
            user.failed_logins = 0
            user.locked_until = None
        else:
            revoke_user_sessions(session, user.id, SessionRevocation.deactivated)
        audit_user_change(session, actor, "reactivate" if active else "deactivate", user)
        return UserView.of(user)


def user_state(user: UserView, now: datetime) -> str:
    """active, inactive, or locked (too many failed logins, until an admin unlocks or it expires)."""
    if not user.active:
        return "inactive"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    return "active"


def users_table(users: Iterable[UserView], *, now: datetime | None = None) -> pd.DataFrame:
    """Users (from list_users) for a table: username, name, email, role, state, last login, and
    whether their password is a one-time one still to be replaced."""
    now = now or datetime.now(UTC)
    return pd.DataFrame(
        [{"username": u.username, "name": u.name, "email": u.email, "role": u.role,
          "state": user_state(u, now), "last login": u.last_login_at,
          "password": "one-time, to be replaced" if u.password_change_required else "their own"}
         for u in users],
        columns=["username", "name", "email", "role", "state", "last login", "password"],
    )


# --- provider status -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderStatus:
    """Whether one channel's chosen provider has what it needs; names settings, never values."""

    channel: str
    provider: str
    status: str  # "configured" | "missing"
    missing: tuple[str, ...]
    note: str


def _missing(settings: Settings, required: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(env for attribute, env in required.items() if not getattr(settings, attribute))


def provider_status(settings: Settings, actor: Actor) -> list[ProviderStatus]:
    """The LLM, SMS and email providers in use and whether their settings are present."""
    actor.require(Permission.manage_settings)
    rows: list[tuple[str, str, tuple[str, ...], str]] = []
    if settings.llm_provider == "openai":
        base = "a custom OPENAI_BASE_URL" if settings.openai_base_url else "api.openai.com"
        rows.append(("LLM", "openai", _missing(settings, {"openai_api_key": "OPENAI_API_KEY"}),
                     f"ChatOpenAI via {base}; default model {settings.default_model}"))
    else:
        rows.append(("LLM", "offline", (), "deterministic offline writer: no network, no key"))
    if settings.sms_provider == "twilio":
        required = {"twilio_account_sid": "LEADFLOW_TWILIO_ACCOUNT_SID",
                    "twilio_auth_token": "LEADFLOW_TWILIO_AUTH_TOKEN",
                    "twilio_from_number": "LEADFLOW_TWILIO_FROM_NUMBER"}
        rows.append(("SMS", "twilio", _missing(settings, required), "sends through Twilio"))
    else:
        rows.append(("SMS", "outbox", (), "recorded in the database only: nothing leaves the machine"))
    if settings.email_provider == "smtp":
        required = {"smtp_host": "LEADFLOW_SMTP_HOST", "smtp_from": "LEADFLOW_SMTP_FROM"}
        if settings.smtp_username:
            required["smtp_password"] = "LEADFLOW_SMTP_PASSWORD"
        tls = " with STARTTLS" if settings.smtp_starttls else ""
        rows.append(("Email", "smtp", _missing(settings, required),
                     f"SMTP on port {settings.smtp_port}{tls}"))
    else:
        rows.append(("Email", "outbox", (), "recorded in the database only: nothing leaves the machine"))
    return [
        ProviderStatus(channel, provider, "missing" if missing else "configured", missing, note)
        for channel, provider, missing, note in rows
    ]


def provider_status_table(settings: Settings, actor: Actor) -> pd.DataFrame:
    """`provider_status` for a table: channel, provider, status, missing settings, note."""
    return pd.DataFrame(
        [{"channel": s.channel, "provider": s.provider, "status": s.status,
          "missing settings": ", ".join(s.missing), "note": s.note}
         for s in provider_status(settings, actor)],
        columns=["channel", "provider", "status", "missing settings", "note"],
    )


# --- audit log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit log, newest first, and how many entries match the filter."""

    entries: pd.DataFrame  # time, user, action, entity, entity_id, details
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class AuditFilterOptions:
    users: dict[int, str]  # id -> username, for a user filter
    actions: list[str]


def audit_filter_options(db: Database, actor: Actor) -> AuditFilterOptions:
    actor.require(Permission.view_audit_log)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        users = dict(session.execute(select(User.id, User.username).order_by(User.username)).all())
        actions = list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))
    return AuditFilterOptions(users=users, actions=actions)


def query_audit_log(
    db: Database,
    actor: Actor,
    *,
    user_id: int | None = None,
    action: str | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
    page_size: int = 50,
) -> AuditPage:
    """Audit entries filtered by user, action and UTC dates (inclusive), paged in SQL.

    A page past the last one gives the last page.
    """
    actor.require(Permission.view_audit_log)
    if page_size not in AUDIT_PAGE_SIZES:
        raise ValidationError(f"page size must be one of {', '.join(map(str, AUDIT_PAGE_SIZES))}")
    conditions = audit_conditions(user_id=user_id, action=action, since=since, until=until)
    with db.session(tenant_id=actor.tenant_id, read_only=True) as session:
        total = session.scalar(select(func.count(AuditLog.id)).where(*conditions)) or 0
        # A page past the end (the filter narrowed) shows the last page rather than nothing.
        page = min(max(1, page), max(1, math.ceil(total / page_size)))
        rows = session.execute(
            select(AuditLog.created_at, User.username, AuditLog.action, AuditLog.entity,
                   AuditLog.entity_id, AuditLog.details)
            .outerjoin(User, User.id == AuditLog.user_id)
            .where(*conditions)
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    entries = pd.DataFrame(
        [
            {"time": r.created_at, "user": r.username or "system", "action": r.action,
             "entity": r.entity, "entity_id": r.entity_id,
             "details": json.dumps(r.details, ensure_ascii=False, sort_keys=True, default=str)}
            for r in rows
        ],
        columns=["time", "user", "action", "entity", "entity_id", "details"],
    )
    return AuditPage(entries=entries, total=int(total), page=page, page_size=page_size)
