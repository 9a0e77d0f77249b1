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
    mapping_suggestion,
    save_mapping_in,
    split_target,
    suggest_mapping,
    validate_mapping,
)
from core.models import Role
from core.permissions import Actor
from tests.factories import make_actor, make_tenant


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Phone", "phone"),
        ("Mobile", "phone:mobile"),
        ("Cell", "phone:mobile"),
        ("Tel", "phone"),
        ("Phone Number", "phone"),
        ("phone_number", "phone"),
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("First Name", "first_name"),
        ("Given name", "first_name"),
        ("Surname", "last_name"),
        ("Name", "full_name"),
        ("Company", "company"),
        ("Organisation", "company"),
        ("Organization", "company"),
        ("Account", "company"),
        ("Title", "title"),
        ("Job Title", "title"),
        ("Role", "title"),
        ("Website", "website"),
        ("Domain", "website"),
        ("URL", "website"),
        ("Industry", "industry"),
        ("City", "city"),
        ("Country", "country"),
        ("Time zone", "time_zone"),
        ("Notes", "notes"),
        ("Tags", "tags"),
        ("Favourite colour", CUSTOM),
    ],
)
def test_headers_are_matched_by_synonyms(header: str, field: str) -> None:
    assert suggest_mapping([header]) == {header: field}


def test_the_first_header_for_a_field_wins() -> None:
    assert suggest_mapping(["Company", "Organisation", "Phone"]) == {
        "Company": "company",
        "Organisation": CUSTOM,
        "Phone": "phone",
    }


def test_several_phone_columns_are_all_phones_with_their_kind() -> None:
    assert suggest_mapping(["Mobile", "Phone", "Home Phone"]) == {
        "Mobile": "phone:mobile",
        "Phone": "phone",
        "Home Phone": "phone:home",
    }


def test_signature_ignores_order_case_and_spacing() -> None:
    assert header_signature(["Phone", "E-mail"]) == header_signature(["e-mail ", "PHONE"])
    assert header_signature(["Phone"]) != header_signature(["Phone", "Email"])


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Phone": "company", "Mobile": "company"}, "both mapped to company"),
        ({"Phone": "fax"}, "not a lead field"),
        ({"Phone": IGNORE, "Mobile": IGNORE}, "map a column to phone or to email"),
        ({"Pager": "phone"}, "does not have: 'Pager'"),
    ],
)
def test_bad_mappings_are_refused(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_mapping(["Phone", "Mobile"], mapping)


@pytest.mark.parametrize(
    "mapping",
    [
        {"Phone": "phone", "Mobile": "phone"},
        {"Phone": "phone:work", "Mobile": "phone:mobile"},
        {"Phone": "email", "Mobile": "email:home"},
    ],
)
def test_several_columns_may_fill_phone_or_email(mapping: dict[str, str]) -> None:
    assert validate_mapping(["Phone", "Mobile"], mapping) == mapping


@pytest.mark.parametrize(
    ("target", "expected"),
    [("phone", ("phone", None)), ("phone:mobile", ("phone", "mobile")), ("email:work", ("email", "work"))],
)
def test_a_target_names_its_field_and_kind(target: str, expected: tuple[str, str | None]) -> None:
    assert split_target(target) == expected


def test_unmentioned_columns_become_custom_fields() -> None:
    assert validate_mapping(["Phone", "Colour"], {"Phone": "phone"}) == {"Phone": "phone", "Colour": CUSTOM}


def _offered(db: Database, actor: Actor, headers: list[str]) -> tuple[dict[str, str], bool]:
    suggestion = mapping_suggestion(db, actor, headers)
    return suggestion.mapping, suggestion.saved


def test_a_saved_mapping_is_offered_again_to_the_same_tenant_only(db: Database) -> None:
    tenant, other = make_tenant(db, "Alpha"), make_tenant(db, "Beta")
    admin = make_actor(db, tenant, Role.admin)
    headers = ["Tel", "Mail", "Shoe size"]
    mapping = {"Tel": "phone", "Mail": "email", "Shoe size": IGNORE}
    assert _offered(db, admin, headers) == ({"Tel": "phone", "Mail": "email", "Shoe size": CUSTOM}, False)
    with db.session(tenant_id=tenant) as session, session.begin():
        save_mapping_in(session, tenant, headers, mapping)
    assert _offered(db, admin, ["shoe size", "TEL", "Mail"]) == (
        {"shoe size": IGNORE, "TEL": "phone", "Mail": "email"},
        True,
    )
    assert find_saved_mapping(db, make_actor(db, other, Role.admin), headers) is None
    with pytest.raises(PermissionDenied):
        find_saved_mapping(db, make_actor(db, tenant, Role.analyst), headers)


class _CountedHeader(str):
    """A header that counts how often it is compared with another string."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountedHeader.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_checking_a_mapping_is_linear_in_the_number_of_columns() -> None:
    count = 3_000
    headers = [_CountedHeader(f"Field {i}") for i in range(count)]
    mapping = {h: IGNORE for h in headers} | {headers[0]: "phone"}
    _CountedHeader.comparisons = 0
    suggest_mapping(headers, max_custom_fields=count)
    validate_mapping(headers, mapping, max_custom_fields=count)
    header_signature(headers)
    # A pairwise check of columns against columns would compare millions of times.
    assert _CountedHeader.comparisons <= 4 * count


def test_the_suggested_mapping_keeps_at_most_the_cap_of_custom_fields() -> None:
    headers = ["Phone", *(f"Extra {i}" for i in range(1, 8))]
    mapping = suggest_mapping(headers, max_custom_fields=5)
    assert [mapping[h] for h in headers] == ["phone", *[CUSTOM] * 5, IGNORE, IGNORE]
    assert validate_mapping(headers, mapping, max_custom_fields=5) == mapping


def test_a_mapping_with_more_custom_fields_than_the_cap_is_refused() -> None:
    headers = ["Phone", *(f"Extra {i}" for i in range(1, 8))]
    with pytest.raises(ValidationError, match=r"7 columns are kept as custom fields, more than the 5"):
        validate_mapping(headers, {"Phone": "phone"}, max_custom_fields=5)
