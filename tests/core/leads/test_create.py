"""A lead added by hand: read like an imported row, refused with each problem on its field, a
duplicate refused naming the lead it would duplicate, admins only."""

from __future__ import annotations

import pytest

from core.db import Database
from core.errors import PermissionDenied
from core.leads.detail import DuplicateLead, LeadEditRefused, create_lead, field_of_problem, lead_detail
from core.models import Role
from tests.factories import make_actor, make_tenant


def test_a_lead_is_stored_as_the_import_would_store_it(db: Database) -> None:
    admin = make_actor(db, make_tenant(db, country="GB"), Role.admin)
    lead_id = create_lead(
        db,
        admin,
        {"first_name": "JANE", "phone": "020 7946 0018", "email": " Jane@Example.co.uk "},
        "Fair; VIP",
    )
    lead = lead_detail(db, admin, lead_id)
    assert (lead.name, lead.fields["phone"], lead.fields["email"]) == (
        "Jane",
        "+442079460018",
        "jane@example.co.uk",
    )
    assert lead.fields["time_zone"] == "Europe/London"
    assert lead.tags == ["fair", "vip"]
    assert [entry.action for entry in lead.audit] == ["added by hand"]


def test_each_problem_names_its_field(db: Database) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    with pytest.raises(LeadEditRefused) as refused:
        create_lead(db, admin, {"phone": "12345", "website": "not a site", "time_zone": "Mars/Base"})
    assert [e["field"] for e in refused.value.field_errors] == ["phone", "time_zone", "website"]


@pytest.mark.parametrize(
    ("problem", "field"),
    [
        ("no phone or email: a lead needs at least one", "phone"),
        ("email 'x' is not valid: ...", "email"),
        ("country 'Narnia' is not recognised", "country"),
        ("notes may have at most 5 characters", "notes"),
        ("something else", None),
    ],
)
def test_field_of_problem(problem: str, field: str | None) -> None:
    assert field_of_problem(problem) == field


def test_a_duplicate_names_the_lead_and_an_analyst_or_manager_may_not_add(db: Database) -> None:
    tenant = make_tenant(db)
    admin = make_actor(db, tenant, Role.admin)
    first = create_lead(db, admin, {"email": "ada@example.com"})
    with pytest.raises(DuplicateLead) as duplicate:
        create_lead(db, admin, {"first_name": "Ada", "email": "ADA@example.com"})
    assert (duplicate.value.field, duplicate.value.lead_id) == ("email", first)
    for role in (Role.analyst, Role.manager):
        with pytest.raises(PermissionDenied):
            create_lead(db, make_actor(db, tenant, role), {"email": "new@example.com"})
