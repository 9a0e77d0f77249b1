"""The lead table: search, filters and paging in SQL, tags, opt-out by hand, and export."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from sqlalchemy import select, update

from core.db import Database
from core.errors import Conflict, NotFound, ValidationError
from core.leads.importer import import_leads
from core.leads.queries import (
    LeadFilter,
    add_tags,
    export_leads_bytes,
    get_import,
    list_imports,
    list_leads,
    list_tags,
    opt_out,
    rejects_frame,
    remove_tag,
)
from core.models import Role
from core.permissions import Actor
from core.suppressions import is_suppressed
from tests.factories import GRACES, make_actor, make_tenant


def _file(count: int, start: int = 0) -> bytes:
    lines = ["Name,Phone,Email,Company"]
    for i in range(start, start + count):
        lines.append(f"Lead {i:03d},+1 415 555 {100 + i:04d},lead{i}@example.com,Company {i % 3}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def seeded(db: Database) -> tuple[Actor, int, int]:
    admin = make_actor(db, make_tenant(db), Role.admin)
    first = import_leads(db, admin, file_name="first.csv", data=_file(30), tags=["fair"]).import_id
    second = import_leads(db, admin, file_name="second.csv", data=_file(5, start=30)).import_id
    return admin, first, second


def test_paging_happens_newest_first(db: Database, seeded: tuple[Actor, int, int]) -> None:
    admin, _first, _second = seeded
    page = list_leads(db, admin, page=2, page_size=10)
    assert (page.total, page.page, page.pages) == (35, 2, 4)
    assert list(page.rows["id"]) == sorted(page.rows["id"], reverse=True)
    assert len(page.rows) == 10
    last = list_leads(db, admin, page=99, page_size=10)
    assert (last.page, len(last.rows)) == (4, 5)


@pytest.mark.parametrize(
    ("where", "total"),
    [(LeadFilter(search="lead 00"), 10), (LeadFilter(search="LEAD7@EXAMPLE"), 1),
     (LeadFilter(search="+1415555010"), 10), (LeadFilter(search="company 2"), 11),
     (LeadFilter(tag="fair"), 30), (LeadFilter(tag="nope"), 0), (LeadFilter(opted_out=True), 0),
     (LeadFilter(opted_out=False), 35)],
)
def test_filters(db: Database, seeded: tuple[Actor, int, int], where: LeadFilter, total: int) -> None:
    admin, _first, _second = seeded
    assert list_leads(db, admin, where).total == total


def test_filter_by_import(db: Database, seeded: tuple[Actor, int, int]) -> None:
    admin, first, second = seeded
    assert list_leads(db, admin, LeadFilter(import_id=second)).total == 5
    assert [i.id for i in list_imports(db, admin)] == [second, first]


def test_tags_and_opt_out_by_hand(db: Database, seeded: tuple[Actor, int, int]) -> None:
    admin, _first, second = seeded
    ids = [int(i) for i in list_leads(db, admin, LeadFilter(import_id=second)).rows["id"]]
    assert add_tags(db, admin, ids[:2], "VIP, partner") == 4
    assert add_tags(db, admin, ids[:2], ["vip"]) == 0
    assert list_tags(db, admin) == [("fair", 30), ("partner", 2), ("vip", 2)]
    assert remove_tag(db, admin, ids[:1], "partner") == 1
    assert opt_out(db, admin, ids[:1]) == 1
    assert opt_out(db, admin, ids[:1]) == 0
    opted = list_leads(db, admin, LeadFilter(opted_out=True))
    assert list(opted.rows["id"]) == [ids[0]]
    with db.session(tenant_id=admin.tenant_id) as session:
        assert is_suppressed(session, "sms", opted.rows["phone"][0])
        assert is_suppressed(session, "email", opted.rows["email"][0])


def test_actions_refuse_other_tenants_leads(db: Database, seeded: tuple[Actor, int, int]) -> None:
    admin, _first, _second = seeded
    stranger = make_actor(db, make_tenant(db, "Other"), Role.admin)
    lead_id = int(list_leads(db, admin).rows["id"][0])
    with pytest.raises(NotFound):
        opt_out(db, stranger, [lead_id])
    with pytest.raises(ValidationError, match="select at least one"):
        add_tags(db, admin, [], "x")
    assert list_leads(db, stranger).total == 0


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_is_injection_safe_and_complete(db: Database, fmt: str) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    data = b"Name,Phone,Company\nAda Lovelace,4155550100,=HYPERLINK(\"http://x.example\")\n"
    import_leads(db, admin, file_name="a.csv", data=data, tags=["vip"])
    exported = export_leads_bytes(db, admin, fmt)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
        assert rows[0]["phone"] == "'+14155550100"
        assert rows[0]["company"] == "'=HYPERLINK(\"http://x.example\")"
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(exported))["Leads"]
        header = [c.value for c in sheet[1]]
        row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
        assert row["phone"] == "+14155550100"
        assert row["company"] == "'=HYPERLINK(\"http://x.example\")"
        rows = [row]
    assert rows[0]["tags"] == "vip"
    # The export imports back as the same lead.
    other = make_actor(db, make_tenant(db, "Copy"), Role.admin)
    again = import_leads(db, other, file_name=f"leads.{fmt}", data=exported)
    assert again.imported == 1
    copy = list_leads(db, other).rows.iloc[0]
    assert (copy["phone"], copy["first_name"]) == ("+14155550100", "Ada")


def test_rejects_download(db: Database) -> None:
    admin = make_actor(db, make_tenant(db), Role.admin)
    summary = import_leads(db, admin, file_name="a.csv", data=b"Phone,Email\n123,\n,x@\n")
    found = get_import(db, admin, summary.import_id)
    frame = rejects_frame(found.rejects)
    assert list(frame.columns) == ["row", "reason", "Phone", "Email"]
    assert list(frame["row"]) == [2, 3]
    with pytest.raises(NotFound):
        get_import(db, admin, 999)


PEOPLE = (
    "First Name,Last Name,Phone,Email,Company\n"
    "Chloé,Dubois,+1 415 555 0128,chloe.dubois@example.com,Société Générale\n"
    "Jürgen,Müller,+49 30 1234567,jm@example.de,Straße & Co\n"
    "Søren,Ørsted,+44 20 7946 0018,soren@example.dk,Œuvre Ltd\n"
    "Zoë,Çelik,+1 212 555 0147,zoe@example.com,100% Growth_Labs\n"
).encode()


@pytest.fixture
def people(db: Database) -> Actor:
    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="people.csv", data=PEOPLE)
    return admin


def _found(db: Database, actor: Actor, query: str) -> list[str]:
    return sorted(list_leads(db, actor, LeadFilter(search=query)).rows["last_name"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Case-insensitive for all of Unicode, accents ignored both ways.
        ("CHLOÉ", ["Dubois"]), ("chloe", ["Dubois"]), ("Chloé Dubois", ["Dubois"]),
        ("muller", ["Müller"]), ("MÜLLER", ["Müller"]), ("jurgen mu", ["Müller"]),
        ("soren orsted", ["Ørsted"]), ("ØRSTED", ["Ørsted"]), ("celik", ["Çelik"]), ("ÇELİK", ["Çelik"]),
        ("zoe", ["Çelik"]), ("societe generale", ["Dubois"]), ("STRASSE", ["Müller"]),
        ("straße", ["Müller"]), ("oeuvre", ["Ørsted"]), ("EXAMPLE.DE", ["Müller"]),
        # A phone typed as people write it finds the stored E.164 number, national forms too.
        ("415-555-0128", ["Dubois"]), ("(415) 555-0128", ["Dubois"]), ("+1 415.555.0128", ["Dubois"]),
        ("1 415 555 0128", ["Dubois"]), ("4155550128", ["Dubois"]), ("555-01", ["Dubois", "Çelik"]),
        ("030 1234567", ["Müller"]), ("+49 30 123 4567", ["Müller"]), ("020 7946 0018", ["Ørsted"]),
        ("00 44 20 7946 0018", ["Ørsted"]),
        # Nothing else: another number, a wildcard typed as text, a phrase across two fields.
        ("415-555-0199", []), ("%", ["Çelik"]), ("_", ["Çelik"]), ("dubois example", []),
        ("chloé x", []),
    ],
)
def test_search_ignores_case_and_accents_and_reads_phones_as_typed(
    db: Database, people: Actor, query: str, expected: list[str]
) -> None:
    assert _found(db, people, query) == expected


def test_search_follows_every_write_of_a_lead(db: Database, people: Actor) -> None:
    from core.models import Lead

    # The ORM: a lead added one by one, then edited.
    with db.session(tenant_id=people.tenant_id) as session, session.begin():
        session.add(Lead(first_name="Renée", last_name="Åberg", phone="+14155550190"))
    assert _found(db, people, "renee aberg") == ["Åberg"]
    with db.session(tenant_id=people.tenant_id) as session, session.begin():
        lead = session.scalars(select(Lead).where(Lead.last_name == "Åberg")).one()
        lead.last_name = "Núñez"
    assert _found(db, people, "nunez") == ["Núñez"]
    assert _found(db, people, "aberg") == []
    # The importer's bulk update of a known lead (same phone, company overwritten).
    again = "Phone,Company\n+1 415 555 0128,Crédit Agricole\n".encode()
    assert import_leads(db, people, file_name="again.csv", data=again, on_duplicate="overwrite").updated == 1
    assert _found(db, people, "credit agricole") == ["Dubois"]
    assert _found(db, people, "societe") == []


def test_migration_backfills_the_search_text_of_existing_leads(db: Database, people: Actor) -> None:
    import importlib

    from core.models import Lead

    migration = importlib.import_module("core.migrations.versions.0012_lead_search")
    with db.engine.begin() as connection:
        connection.execute(update(Lead.__table__).values(search_text=""))
    assert _found(db, people, "muller") == []
    with db.engine.begin() as connection:
        migration._backfill(connection)
    assert _found(db, people, "muller") == ["Müller"]
    assert _found(db, people, "415-555-0128") == ["Dubois"]


def _suppressions(db: Database, actor: Actor) -> dict[str, str]:
    from core.models import Suppression

    with db.session(tenant_id=actor.tenant_id) as session:
        return dict(session.execute(select(Suppression.address, Suppression.reason)).all())


def _audit(db: Database, actor: Actor) -> list[tuple[str, str | None]]:
    from core.models import AuditLog

    with db.session(tenant_id=actor.tenant_id) as session:
        rows = session.execute(select(AuditLog.action, AuditLog.entity_id).order_by(AuditLog.id)).all()
    return [(action, entity_id) for action, entity_id in rows if not action.startswith("leads.import")]


def test_bulk_opt_out_is_planned_then_undone_exactly(db: Database) -> None:
    from core.leads.queries import opt_out_leads, plan_opt_out, undo_opt_out
    from core.suppressions import add_suppression

    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="graces.csv", data=GRACES)
    graces = list_leads(db, admin, LeadFilter(search="grac"))
    ids = sorted(int(i) for i in graces.rows["id"])
    # Suppressed before the action: the undo must leave it suppressed.
    add_suppression(db, admin, channel="email", address="kelly@monaco.example")
    plan = plan_opt_out(db, admin, ids)
    assert (plan.leads, plan.addresses, plan.already_suppressed, plan.already_opted_out) == (3, 5, 1, 0)
    assert plan.names == ("Grace Hopper", "Grace Kelly", "Gracie Allen")
    assert list_leads(db, admin, LeadFilter(opted_out=True)).total == 0  # planning changes nothing

    done = opt_out_leads(db, admin, ids)
    assert (done.leads, done.suppressions) == (3, 4)
    assert list_leads(db, admin, LeadFilter(opted_out=True)).total == 3
    assert len(_suppressions(db, admin)) == 5

    undone = undo_opt_out(db, admin, done.action_id)
    assert (undone.leads, undone.suppressions, undone.kept) == (3, 4, 0)
    assert list_leads(db, admin, LeadFilter(opted_out=True)).total == 0
    assert _suppressions(db, admin) == {"kelly@monaco.example": "manual"}
    actions = [action for action, _id in _audit(db, admin)]
    assert actions.count("suppressions.remove") == 4
    assert ("leads.opt_out_undo", str(done.action_id)) in _audit(db, admin)
    with pytest.raises(Conflict, match="undone already"):
        undo_opt_out(db, admin, done.action_id)


def test_undo_keeps_what_happened_since(db: Database) -> None:
    from core.leads.queries import opt_out_leads, undo_opt_out
    from core.models import Lead, Suppression

    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="graces.csv", data=GRACES)
    ids = sorted(int(i) for i in list_leads(db, admin, LeadFilter(search="grace")).rows["id"])
    earlier = opt_out_leads(db, admin, ids[:1])
    done = opt_out_leads(db, admin, ids)
    assert (done.leads, done.suppressions) == (1, 2)  # Hopper was opted out by the earlier action
    # Meanwhile Kelly answered STOP: that suppression came from her, not from the action.
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        kelly = update(Suppression).where(Suppression.address == "+14155550102")
        session.execute(kelly.values(reason="stop"))
    undone = undo_opt_out(db, admin, done.action_id)
    assert (undone.leads, undone.suppressions, undone.kept) == (1, 1, 1)
    assert _suppressions(db, admin) == {"+14155550101": "manual", "grace@navy.example": "manual",
                                        "+14155550102": "stop"}
    with db.session(tenant_id=admin.tenant_id) as session:
        opted = set(session.scalars(select(Lead.id).where(Lead.opted_out_at.is_not(None))))
    assert opted == {ids[0]}
    assert earlier.action_id != done.action_id


def test_undo_refuses_other_actions_and_tenants_and_roles(db: Database) -> None:
    from core.errors import PermissionDenied
    from core.leads.queries import opt_out_leads, undo_opt_out

    admin = make_actor(db, make_tenant(db), Role.admin)
    import_leads(db, admin, file_name="graces.csv", data=GRACES)
    ids = [int(i) for i in list_leads(db, admin).rows["id"]]
    done = opt_out_leads(db, admin, ids)
    stranger = make_actor(db, make_tenant(db, "Other"), Role.admin)
    with pytest.raises(NotFound, match="not in the audit log"):
        undo_opt_out(db, stranger, done.action_id)
    with pytest.raises(NotFound, match="not in the audit log"):
        undo_opt_out(db, admin, done.action_id + 1000)
    with pytest.raises(PermissionDenied):
        undo_opt_out(db, make_actor(db, admin.tenant_id, Role.manager), done.action_id)
    assert list_leads(db, admin, LeadFilter(opted_out=True)).total == 4
