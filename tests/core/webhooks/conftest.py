"""Fixtures for webhook tests: a tenant's admin, and a receiver verifying signatures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.db import Database
from core.models import Role
from core.permissions import Actor
from tests.factories import make_actor, make_tenant
from tests.support.webhook_receiver import Receiver, running_receiver


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_actor(db, make_tenant(db), Role.admin)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
