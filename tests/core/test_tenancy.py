"""A tenant's rows can never be read or changed through another tenant's session or services."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    bindparam,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.auth import list_users, unlock_user
from core.db import (
    PINNED_TENANT_PARAM,
    Database,
    TenantScopeError,
    execute_core,
    tenant_pinned,
    trusted_sql,
)
from core.errors import NotFound
from core.models import Lead, Tenant, User
from core.reports import overview_figures
from tests.factories import make_actor, make_tenant


@pytest.fixture
def two_tenants(db: Database) -> tuple[int, int]:
    a, b = make_tenant(db, "Alpha"), make_tenant(db, "Beta")
    for tenant_id, phone in ((a, "+14155550100"), (b, "+14155550199")):
        with db.session(tenant_id=tenant_id) as s, s.begin():
            s.add(Lead(first_name=f"Lead of {tenant_id}", phone=phone))
    return a, b


def test_select_sees_only_own_rows(db: Database, two_tenants: tuple[int, int]) -> None:
    a, b = two_tenants
    with db.session(tenant_id=a) as s:
        leads = s.scalars(select(Lead)).all()
        assert [lead.tenant_id for lead in leads] == [a]
        assert s.scalar(select(func.count(Lead.id))) == 1


def test_get_by_id_of_other_tenant_returns_none(db: Database, two_tenants: tuple[int, int]) -> None:
    a, b = two_tenants
    with db.session(system=True) as s:
        b_lead_id = s.scalar(select(Lead.id).where(Lead.tenant_id == b))
    with db.session(tenant_id=a) as s:
        assert s.get(Lead, b_lead_id) is None


def test_bulk_update_and_delete_are_scoped(db: Database, two_tenants: tuple[int, int]) -> None:
    a, b = two_tenants
    with db.session(tenant_id=a) as s, s.begin():
        s.execute(update(Lead).values(notes="touched"))
        s.execute(delete(Lead).where(Lead.first_name.like("Lead of%")))
    with db.session(system=True) as s:
        remaining = s.scalars(select(Lead)).all()
        assert [(lead.tenant_id, lead.notes) for lead in remaining] == [(b, None)]


def test_writing_another_tenants_row_is_refused(db: Database, two_tenants: tuple[int, int]) -> None:
    a, b = two_tenants
    with pytest.raises(TenantScopeError):
        with db.session(tenant_id=a) as s, s.begin():
            s.add(Lead(tenant_id=b, first_name="smuggled"))
    with db.session(system=True) as s:
        assert s.scalar(select(func.count(Lead.id)).where(Lead.first_name == "smuggled")) == 0


def test_moving_a_row_to_another_tenant_is_refused(db: Database, two_tenants: tuple[int, int]) -> None:
    a, b = two_tenants
    with pytest.raises(TenantScopeError):
        with db.session(tenant_id=a) as s, s.begin():
            lead = s.scalars(select(Lead)).one()
            lead.tenant_id = b


def test_new_rows_get_the_session_tenant(db: Database, two_tenants: tuple[int, int]) -> None:
    a, _ = two_tenants
    with db.session(tenant_id=a) as s, s.begin():
        lead = Lead(first_name="implicit")
        s.add(lead)
    assert lead.tenant_id == a


def test_unscoped_session_cannot_be_opened_or_used(db: Database) -> None:
    with pytest.raises(TenantScopeError):
        db.session()


def test_services_are_scoped(db: Database, two_tenants: tuple[int, int]) -> None:
    a, b = two_tenants
    admin_a = make_actor(db, a)
    make_actor(db, b)
    assert [u.tenant_id for u in list_users(db, admin_a)] == [a]
    assert overview_figures(db, admin_a).leads == 1
    with db.session(system=True) as s:
        b_user = s.scalar(select(User.id).where(User.tenant_id == b))
    with pytest.raises(NotFound):
        unlock_user(db, admin_a, b_user)


def test_statement_that_would_escape_the_scope_is_refused(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with db.session(tenant_id=a) as s:
        with pytest.raises(TenantScopeError, match="func.count"):
            s.scalar(select(func.count()).select_from(Lead))
        with pytest.raises(TenantScopeError):
            s.scalar(select(func.count()).select_from(select(Lead.id).subquery()))


def test_nested_selects_are_scoped(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with db.session(tenant_id=a) as s:
        inner = select(Lead.id).subquery()
        assert s.scalar(select(func.count(Lead.id)).where(Lead.id.in_(select(inner.c.id)))) == 1
        assert len(s.execute(select(Lead.id).join(inner, inner.c.id == Lead.id)).all()) == 1


def test_bulk_update_by_primary_key_is_scoped(db: Database, two_tenants) -> None:
    a, b = two_tenants
    with db.session(system=True) as s:
        ids = dict(s.execute(select(Lead.tenant_id, Lead.id)).all())
    with db.session(tenant_id=a) as s, s.begin():
        s.execute(update(Lead), [{"id": ids[b], "notes": "hacked"}, {"id": ids[a], "notes": "mine"}])
    with db.session(system=True) as s:
        notes = dict(s.execute(select(Lead.tenant_id, Lead.notes)).all())
    assert notes == {a: "mine", b: None}


def test_a_statement_reused_across_tenants_is_scoped_to_each(db: Database, two_tenants) -> None:
    # Services keep statements and run them again; the scoped form of one is cached per tenant.
    a, b = two_tenants
    names = select(Lead.first_name)
    rename = update(Lead).values(last_name="Renamed").execution_options(synchronize_session=False)
    for tenant_id in (a, b, a):
        with db.session(tenant_id=tenant_id) as s:
            assert s.scalars(names).all() == [f"Lead of {tenant_id}"]
    with db.session(tenant_id=a) as s, s.begin():
        assert s.execute(rename).rowcount == 1
    with db.session(system=True) as s:
        renamed = s.execute(select(Lead.tenant_id, Lead.last_name)).all()
    assert sorted(renamed) == sorted([(a, "Renamed"), (b, None)])


# -- execute_core: prebuilt Core statements run without the ORM, under the same rule ------------

LEADS = Lead.__table__


def test_a_pinned_update_changes_only_the_sessions_tenant(db: Database, two_tenants) -> None:
    a, b = two_tenants
    with db.session(system=True) as s:
        ids = dict(s.execute(select(Lead.tenant_id, Lead.id)).all())
    rename = tenant_pinned(
        update(LEADS).where(LEADS.c.id == bindparam("row_id")).values(notes=bindparam("new_notes"))
    )
    with db.session(tenant_id=a) as s, s.begin():
        # The other tenant's row by its id, even with the other tenant's id offered: untouched.
        other = {"row_id": ids[b], "new_notes": "hacked", PINNED_TENANT_PARAM: b}
        assert execute_core(s, rename, other).rowcount == 0
        assert execute_core(s, rename, {"row_id": ids[a], "new_notes": "mine"}).rowcount == 1
    with db.session(system=True) as s:
        assert dict(s.execute(select(Lead.tenant_id, Lead.notes)).all()) == {a: "mine", b: None}


def test_a_core_insert_for_another_tenant_is_refused_and_writes_nothing(db: Database, two_tenants) -> None:
    a, b = two_tenants
    add = insert(LEADS)
    with pytest.raises(TenantScopeError, match=f"insert for tenant {b}"):
        with db.session(tenant_id=a) as s, s.begin():
            execute_core(s, add, [{"tenant_id": a, "first_name": "ok"}, {"tenant_id": b, "first_name": "x"}])
    with db.session(tenant_id=a) as s, s.begin():
        execute_core(s, add, {"tenant_id": a, "first_name": "mine"})
    with db.session(system=True) as s:
        names = s.execute(select(Lead.tenant_id, Lead.first_name).order_by(Lead.id)).all()
    assert [n for n in names if n[1] in ("ok", "x", "mine")] == [(a, "mine")]


def test_core_statements_that_execute_core_cannot_scope_are_refused(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    unpinned = update(LEADS).values(notes="everyone")
    with db.session(tenant_id=a) as s, s.begin():
        for statement in (unpinned, delete(LEADS), select(LEADS.c.first_name)):
            with pytest.raises(TenantScopeError, match="run this statement with Session.execute"):
                execute_core(s, statement, {})
    with pytest.raises(TenantScopeError, match="tenant-owned table"):
        tenant_pinned(update(Tenant.__table__).values(name="x"))
    with db.session(system=True) as s:
        assert s.scalar(select(func.count(Lead.id)).where(Lead.notes == "everyone")) == 0


def test_a_system_session_runs_core_statements_as_they_are(db: Database, two_tenants) -> None:
    a, b = two_tenants
    with db.session(system=True) as s, s.begin():
        rows = execute_core(s, select(LEADS.c.tenant_id).order_by(LEADS.c.tenant_id), {}).scalars().all()
        assert rows == [a, b]
        pinned = tenant_pinned(update(LEADS).values(notes="by the system"))
        assert execute_core(s, pinned, {PINNED_TENANT_PARAM: b}).rowcount == 1
    with db.session(system=True) as s:
        assert dict(s.execute(select(Lead.tenant_id, Lead.notes)).all()) == {a: None, b: "by the system"}


# -- disguises: SQL the guard cannot read, and writes that carry or set another tenant's id ------


def _lead_ids(db: Database) -> dict[int, int]:
    with db.session(system=True) as s:
        return dict(s.execute(select(Lead.tenant_id, Lead.id)).all())


def _rows_by_tenant(db: Database) -> list[tuple[int, str | None, str | None]]:
    with db.session(system=True) as s:
        return sorted(s.execute(select(Lead.tenant_id, Lead.first_name, Lead.notes)).all())


# Each reads every tenant's leads if it runs unscoped; the names are spelt as SQL allows.
UNREADABLE_STATEMENTS = {
    "text": lambda: text("SELECT first_name FROM leads"),
    "text, quoted upper case": lambda: text('select first_name from "LEADS"'),
    "text naming no table": lambda: text("SELECT 1"),
    "text inside a select": lambda: select(Lead.first_name).where(text("1 = 1 OR 1 = 1")),
    "text as a FROM": lambda: select(literal_column("first_name")).select_from(text("leads")),
    "ORM from_statement": lambda: select(Lead).from_statement(text("SELECT * FROM leads")),
    "literal column": lambda: select(literal_column("(SELECT count(*) FROM leads)")),
    "table() clause": lambda: select(table("leads", column("first_name"))),
    "table() in upper case": lambda: select(table("LEADS", column("first_name"))),
    "table() in a subquery": lambda: select(Lead.first_name).where(
        Lead.id.in_(select(table("leads", column("id")).c.id))
    ),
    "suffix": lambda: select(Lead.first_name).suffix_with("UNION SELECT first_name FROM leads"),
    "prefix": lambda: select(Lead.first_name).prefix_with("/* x */"),
    "custom operator": lambda: select(Lead.first_name).where(Lead.id.op("> 0 OR")(0)),
}


@pytest.mark.parametrize("build", UNREADABLE_STATEMENTS.values(), ids=UNREADABLE_STATEMENTS.keys())
def test_sql_the_guard_cannot_read_is_refused_in_a_tenant_session(db: Database, two_tenants, build) -> None:
    a, _ = two_tenants
    with db.session(tenant_id=a) as s:
        with pytest.raises(TenantScopeError, match="cannot read"):
            s.execute(build()).all()
        with pytest.raises(TenantScopeError, match="cannot read"):
            execute_core(s, build(), {})


def test_sql_marked_trusted_by_core_and_system_sessions_run_as_they_are(db: Database, two_tenants) -> None:
    a, _ = two_tenants
    with db.session(tenant_id=a) as s:
        assert s.execute(trusted_sql("SELECT 1")).scalar() == 1
    with db.session(system=True) as s:
        assert s.execute(text("SELECT count(*) FROM leads")).scalar() == 2
        assert s.execute(select(table("leads", column("id")).c.id)).all()


def test_a_mapped_table_under_another_spelling_is_refused(db: Database, two_tenants) -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table

    a, _ = two_tenants
    shadow = Table("Leads", MetaData(), Column("id", Integer), Column("first_name", String))
    with db.session(tenant_id=a) as s:
        with pytest.raises(TenantScopeError):
            s.execute(select(shadow.c.first_name)).all()


def _insert_values(a: int, b: int) -> dict[str, Any]:
    return {
        "ORM values": lambda: (insert(Lead).values(tenant_id=b, first_name="x"), None),
        "Core values": lambda: (insert(LEADS).values(tenant_id=b, first_name="x"), None),
        "multi-row values": lambda: (
            insert(Lead).values([{"tenant_id": a, "first_name": "x"}, {"tenant_id": b, "first_name": "y"}]),
            None,
        ),
        "executemany params": lambda: (
            insert(Lead),
            [{"tenant_id": a, "first_name": "x"}, {"tenant_id": b, "first_name": "y"}],
        ),
        "a bound parameter": lambda: (
            insert(Lead).values(tenant_id=bindparam("owner"), first_name="x"),
            {"owner": b},
        ),
        "an expression": lambda: (insert(Lead).values(tenant_id=literal(a) + (b - a), first_name="x"), None),
        "a subquery": lambda: (
            insert(Lead).values(
                tenant_id=select(Tenant.id).where(Tenant.id == b).scalar_subquery(), first_name="x"
            ),
            None,
        ),
        "from_select with a literal": lambda: (
            insert(Lead).from_select(["tenant_id", "first_name"], select(literal(b), literal("x"))),
            None,
        ),
        "from_select with a column": lambda: (
            insert(Lead).from_select(
                ["tenant_id", "first_name", "phone"],
                select(Lead.tenant_id, Lead.first_name, Lead.phone + "9"),
            ),
            None,
        ),
    }


@pytest.mark.parametrize("case", list(_insert_values(1, 2)), ids=list(_insert_values(1, 2)))
def test_an_insert_carrying_another_tenants_id_is_refused(db: Database, two_tenants, case: str) -> None:
    a, b = two_tenants
    before = _rows_by_tenant(db)
    statement, params = _insert_values(a, b)[case]()
    with pytest.raises(TenantScopeError, match="tenant_id"):
        with db.session(tenant_id=a) as s, s.begin():
            s.execute(statement, params)
    with pytest.raises(TenantScopeError, match="tenant_id"):
        with db.session(tenant_id=a) as s, s.begin():
            execute_core(s, _core_form(statement), params or {})
    assert _rows_by_tenant(db) == before


def _core_form(statement: Any) -> Any:
    # The same INSERT on the Core table, as execute_core receives prebuilt statements.
    from sqlalchemy.sql import visitors

    return visitors.replacement_traverse(
        statement, {}, lambda element: LEADS if getattr(element, "name", None) == "leads" else None
    )


def test_insert_from_select_reads_only_the_sessions_tenant(db: Database, two_tenants) -> None:
    a, b = two_tenants
    copy = insert(Lead).from_select(
        ["tenant_id", "first_name", "phone"],
        select(literal(a), Lead.first_name + " copy", Lead.phone + "9"),
    )
    core_copy = insert(LEADS).from_select(
        ["tenant_id", "first_name", "phone"],
        select(bindparam("tenant_id"), LEADS.c.first_name + " core", LEADS.c.phone + "8").where(
            ~Lead.id.in_(select(LEADS.c.id).where(LEADS.c.first_name.like("%copy")))
        ),
    )
    with db.session(tenant_id=a) as s, s.begin():
        s.execute(copy)
        execute_core(s, core_copy, {"tenant_id": a})
    names = {(t, n) for t, n, _ in _rows_by_tenant(db)}
    assert names == {
        (a, f"Lead of {a}"),
        (a, f"Lead of {a} copy"),
        (a, f"Lead of {a} core"),
        (b, f"Lead of {b}"),
    }


def test_an_upsert_that_could_update_another_tenants_row_is_refused(db: Database, two_tenants) -> None:
    a, b = two_tenants
    make_insert = sqlite_insert if db.is_sqlite else postgresql_insert
    upsert = (
        make_insert(LEADS)
        .values(id=_lead_ids(db)[b], tenant_id=a, first_name="x")
        .on_conflict_do_update(index_elements=["id"], set_={"notes": "hacked"})
    )
    with pytest.raises(TenantScopeError, match="ON CONFLICT DO UPDATE"):
        with db.session(tenant_id=a) as s, s.begin():
            execute_core(s, upsert, {})
    assert all(notes is None for _, _, notes in _rows_by_tenant(db))


def _tenant_moves(a: int, b: int, ids: dict[int, int]) -> dict[str, Any]:
    pinned = tenant_pinned(update(LEADS).where(LEADS.c.id == bindparam("row_id")).values(notes="x"))
    return {
        "ORM values": lambda s: s.execute(update(Lead).values(tenant_id=b)),
        "ORM values, same tenant": lambda s: s.execute(update(Lead).values(tenant_id=a)),
        "ORM ordered values": lambda s: s.execute(update(Lead).ordered_values((Lead.tenant_id, b))),
        "ORM bulk by primary key": lambda s: s.execute(update(Lead), [{"id": ids[a], "tenant_id": b}]),
        "Core values": lambda s: s.execute(update(LEADS).values(tenant_id=b)),
        "pinned values": lambda s: execute_core(s, tenant_pinned(update(LEADS).values(tenant_id=b)), {}),
        "pinned parameters": lambda s: execute_core(s, pinned, {"row_id": ids[a], "tenant_id": b}),
    }


@pytest.mark.parametrize("case", list(_tenant_moves(1, 2, {})), ids=list(_tenant_moves(1, 2, {})))
def test_an_update_that_sets_tenant_id_is_refused(db: Database, two_tenants, case: str) -> None:
    a, b = two_tenants
    before = _rows_by_tenant(db)
    with pytest.raises(TenantScopeError, match="tenant_id"):
        with db.session(tenant_id=a) as s, s.begin():
            _tenant_moves(a, b, _lead_ids(db))[case](s)
    assert _rows_by_tenant(db) == before


# -- the second wall: PostgreSQL row-level security under the guard -----------------------------


@pytest.fixture
def pg(postgres_url: str, db: Database) -> Database:
    """The test database, which is PostgreSQL here, with its row-level security in place."""
    return db


@pytest.mark.postgres
def test_raw_sql_beneath_the_guard_touches_only_the_sessions_tenant(pg: Database, two_tenants) -> None:
    a, b = two_tenants
    with pg.session(tenant_id=a) as s, s.begin():
        raw = s.connection()
        assert raw.exec_driver_sql("SELECT tenant_id FROM leads").scalars().all() == [a]
        assert raw.exec_driver_sql("SELECT count(*) FROM public.leads").scalar() == 1
        assert raw.exec_driver_sql("UPDATE leads SET notes = 'everyone'").rowcount == 1
        assert raw.exec_driver_sql("DELETE FROM leads WHERE tenant_id <> %(a)s", {"a": a}).rowcount == 0
    assert _rows_by_tenant(pg) == [(a, f"Lead of {a}", "everyone"), (b, f"Lead of {b}", None)]


RAW_CROSS_TENANT_WRITES = {
    "insert for the other tenant": "INSERT INTO leads (tenant_id, first_name, custom_fields, created_at, "
    "updated_at) VALUES (%(b)s, 'smuggled', '{}', now(), now())",
    "move a row to the other tenant": "UPDATE leads SET tenant_id = %(b)s",
    "copy the other tenant's rows": "INSERT INTO events (tenant_id, node, level, message, data, created_at) "
    "SELECT %(b)s, 'x', 'info', first_name, '{}', now() FROM leads",
}


@pytest.mark.postgres
@pytest.mark.parametrize("sql", RAW_CROSS_TENANT_WRITES.values(), ids=RAW_CROSS_TENANT_WRITES.keys())
def test_raw_sql_beneath_the_guard_cannot_write_another_tenants_rows(pg: Database, two_tenants, sql) -> None:
    from sqlalchemy.exc import ProgrammingError

    a, b = two_tenants
    before = _rows_by_tenant(pg)
    with pytest.raises(ProgrammingError, match="row-level security"):
        with pg.session(tenant_id=a) as s, s.begin():
            s.connection().exec_driver_sql(sql, {"b": b})
    assert _rows_by_tenant(pg) == before


@pytest.mark.postgres
def test_an_orm_query_with_the_guard_switched_off_still_sees_one_tenant(pg: Database, two_tenants) -> None:
    from sqlalchemy import event

    from core.tenant_guard import scope_orm_statement

    a, b = two_tenants
    factory = pg._factory
    event.remove(factory, "do_orm_execute", scope_orm_statement)
    try:
        with pg.session(tenant_id=b) as s, s.begin():
            assert [lead.tenant_id for lead in s.scalars(select(Lead))] == [b]
            assert s.scalar(select(func.count()).select_from(Lead)) == 1
            assert s.execute(update(Lead).values(notes="b only")).rowcount == 1
    finally:
        event.listen(factory, "do_orm_execute", scope_orm_statement)
    assert _rows_by_tenant(pg) == [(a, f"Lead of {a}", None), (b, f"Lead of {b}", "b only")]


@pytest.mark.postgres
def test_every_transaction_of_a_session_is_confined_and_the_pool_gets_its_connection_back_clean(
    postgres_url: str, two_tenants
) -> None:
    from tests.conftest import make_settings

    a, b = two_tenants
    # One pooled connection: every session and checkout below reuses it.
    single = Database(make_settings(postgres_url, db_pool_size=1, db_max_overflow=0))
    try:
        with single.session(tenant_id=a) as s:
            for _ in range(3):  # autobegin, commit, autobegin again: each transaction re-enters
                assert s.connection().exec_driver_sql("SELECT tenant_id FROM leads").scalars().all() == [a]
                s.commit()
            with s.begin():
                assert s.connection().exec_driver_sql("SELECT count(*) FROM leads").scalar() == 1
        assert single.row_security
        with single.engine.connect() as conn:
            user, setting = conn.exec_driver_sql(
                "SELECT current_user, current_setting('leadflow.tenant_id', true)"
            ).one()
            assert (user, setting or None) == (conn.exec_driver_sql("SELECT session_user").scalar(), None)
            assert conn.exec_driver_sql("SELECT count(*) FROM leads").scalar() == 2
        with single.session(system=True) as s:
            assert s.connection().exec_driver_sql("SELECT count(*) FROM leads").scalar() == 2
        with single.session(tenant_id=b) as s:
            assert s.connection().exec_driver_sql("SELECT tenant_id FROM leads").scalars().all() == [b]
    finally:
        single.dispose()


def test_core_tables_inside_an_orm_statement_read_only_the_sessions_tenant(db: Database, two_tenants) -> None:
    a, b = two_tenants
    everyone = select(func.count(LEADS.c.id)).scalar_subquery()
    others_name = select(LEADS.c.first_name).where(LEADS.c.tenant_id == b).scalar_subquery()
    with db.session(tenant_id=a) as s, s.begin():
        assert s.execute(select(Lead.tenant_id, everyone)).all() == [(a, 1)]
        s.execute(update(Lead).values(notes=others_name))
        assert s.scalar(select(func.count(Lead.id)).where(Lead.id.in_(select(LEADS.c.id)))) == 1
    assert _rows_by_tenant(db) == [(a, f"Lead of {a}", None), (b, f"Lead of {b}", None)]
