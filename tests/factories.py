"""Small builders for test data, through the real services where one exists."""

from __future__ import annotations

from core.auth import create_user
from core.db import Database
from core.models import Role
from core.permissions import Actor, system_actor
from core.tenants import create_tenant

PASSWORD = "correct horse battery"


def make_tenant(db: Database, name: str = "Acme", country: str = "US") -> int:
    return create_tenant(db, name, country).id


def make_actor(db: Database, tenant_id: int, role: Role = Role.owner, username: str | None = None) -> Actor:
    login = username or f"{role.value}-{tenant_id}"
    user = create_user(db, system_actor(tenant_id), username=login, name=login.title(),
                       email=f"{login}@example.com", role=role, password=PASSWORD)
    return Actor(user_id=user.id, tenant_id=tenant_id, role=role, username=user.username,
                 name=user.name)
