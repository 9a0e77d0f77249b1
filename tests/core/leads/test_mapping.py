"""Column mapping: the synonym table, checks on a mapping, and mappings saved per tenant."""

from __future__ import annotations

import pytest

from core.db import Database
from core.errors import PermissionDenied, ValidationError
from core.leads.mapping import (
    CUSTOM,
    IGNORE,
    find_saved_mapping,
    header_signature,
    mapping_for,
    save_mapping_in,
    suggest_mapping,
    validate_mapping,
)
from core.models import Role
from tests.factories import make_actor, make_tenant


@pytest.mark.parametrize(
    ("header", "field"),
    [("Phone", "phone"), ("Mobile", "phone"), ("Cell", "phone"), ("Tel", "phone"),
     ("Phone Number", "phone"), ("phone_number", "phone"), ("E-mail", "email"),
     ("Email Address", "email"), ("First Name", "first_name"), ("Given name", "first_name"),
     ("Surname", "last_name"), ("Name", "full_name"), ("Company", "company"),
     ("Organisation", "company"), ("Organization", "company"), ("Account", "company"),
     ("Title", "title"), ("Job Title", "title"), ("Role", "title"), ("Website", "website"),
     ("Domain", "website"), ("URL", "website"), ("Industry", "industry"), ("City", "city"),
     ("Country", "country"), ("Time zone", "time_zone"), ("Notes", "notes"), ("Tags", "tags"),
     ("Favourite colour", CUSTOM)],
)
def test_headers_are_matched_by_synonyms(header: str, field: str) -> None:
    assert suggest_mapping([header]) == {header: field}


def test_the_first_header_for_a_field_wins() -> None:
    assert suggest_mapping(["Mobile", "Phone"]) == {"Mobile": "phone", "Phone": CUSTOM}


def test_signature_ignores_order_case_and_spacing() -> None:
    assert header_signature(["Phone", "E-mail"]) == header_signature(["e-mail ", "PHONE"])
    assert header_signature(["Phone"]) != header_signature(["Phone", "Email"])


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Phone": "phone", "Mobile": "phone"}, "both mapped to phone"),
        ({"Phone": "fax"}, "not a lead field"),
        ({"Phone": IGNORE, "Mobile": IGNORE}, "map a column to phone or to email"),
        ({"Pager": "phone"}, "does not have: 'Pager'"),
    ],
)
def test_bad_mappings_are_refused(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_mapping(["Phone", "Mobile"], mapping)


def test_unmentioned_columns_become_custom_fields() -> None:
    assert validate_mapping(["Phone", "Colour"], {"Phone": "phone"}) == {"Phone": "phone", "Colour": CUSTOM}


def test_a_saved_mapping_is_offered_again_to_the_same_tenant_only(db: Database) -> None:
    tenant, other = make_tenant(db, "Alpha"), make_tenant(db, "Beta")
    admin = make_actor(db, tenant, Role.admin)
    headers = ["Tel", "Mail", "Shoe size"]
    mapping = {"Tel": "phone", "Mail": "email", "Shoe size": IGNORE}
    assert mapping_for(db, admin, headers) == (
        {"Tel": "phone", "Mail": "email", "Shoe size": CUSTOM}, False)
    with db.session(tenant_id=tenant) as session, session.begin():
        save_mapping_in(session, tenant, headers, mapping)
    assert mapping_for(db, admin, ["shoe size", "TEL", "Mail"]) == (
        {"shoe size": IGNORE, "TEL": "phone", "Mail": "email"}, True)
    assert find_saved_mapping(db, make_actor(db, other, Role.admin), headers) is None
    with pytest.raises(PermissionDenied):
        find_saved_mapping(db, make_actor(db, tenant, Role.analyst), headers)
