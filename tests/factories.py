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


AREA_CODES = ("202", "212", "213", "312", "415", "617", "718", "305", "404", "512")


def insert_leads(db: Database, tenant_id: int, count: int, *, start: int = 0,
                 **fields: object) -> list[int]:
    """`count` leads with distinct valid US numbers and emails, inserted in one statement."""
    from sqlalchemy import insert

    from core.models import Lead

    rows = [
        {"tenant_id": tenant_id, "first_name": f"Lead{n}", "last_name": "Test",
         "phone": f"+1{AREA_CODES[n // 10_000]}555{n % 10_000:04d}",
         "email": f"lead{n}@example.com", "company": f"Company {n}", "title": "Head of Sales",
         "country": "US", "time_zone": "UTC", "custom_fields": {}, **fields}
        for n in range(start, start + count)
    ]
    with db.session(tenant_id=tenant_id) as session, session.begin():
        return list(session.scalars(insert(Lead).returning(Lead.id), rows))
