"""The lead table: search, filters and paging in SQL, tags, opt-out by hand, and export."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from core.db import Database
from core.errors import NotFound, ValidationError
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
from tests.factories import make_actor, make_tenant


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
