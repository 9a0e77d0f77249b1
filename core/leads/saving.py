"""Saving an import's accepted rows: the tenant's leads they match, read once; new leads written
in bulk (COPY on PostgreSQL); matches merged as the duplicate policy says; tags added.

core/leads/importer.py calls this inside the import's one transaction, a chunk at a time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core.db import SYSTEM_KEY, TENANT_KEY, TenantScopeError
from core.leads.columns import IMPORTED_COLUMNS
from core.leads.search import lead_search_text
from core.models import Lead, LeadTag

# Where a value is in a row of IMPORTED_COLUMNS.
PHONE_AT = IMPORTED_COLUMNS.index("phone")
EMAIL_AT = IMPORTED_COLUMNS.index("email")
CUSTOM_AT = IMPORTED_COLUMNS.index("custom_fields")
ALTERNATES_AT = IMPORTED_COLUMNS.index("alternates")
LOOKUP_CHUNK_SQLITE = 2_000  # keys per IN (...) list, well under SQLite's parameter limit
LOOKUP_CHUNK_POSTGRES = 20_000  # keys per array parameter
FEW_LEADS = 50_000  # up to this many leads a tenant's leads are read in one query

# An accepted row: its spreadsheet row number, its values in IMPORTED_COLUMNS order, its own tags.
Accepted = tuple[int, tuple[Any, ...], tuple[str, ...]]


class DuplicatePolicy(enum.StrEnum):
    """What to do with a row that matches an existing lead (on phone or email)."""

    skip = "skip"  # leave the existing lead untouched
    fill = "fill"  # fill the existing lead's empty fields from the row
    overwrite = "overwrite"  # replace the existing lead's fields with the row's non-empty values


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class KnownLeads:
    """The tenant's existing leads that share a phone or email with the file, read once per import.

    Each lead is a dict of its current values; merges change it in place and re-key it, so a
    later row sees what earlier rows did to it (in any chunk), and the bulk UPDATE writes it whole.
    """

    def __init__(self, leads: list[dict[str, Any]]) -> None:
        self.by_phone: dict[str, dict[str, Any]] = {}
        self.by_email: dict[str, dict[str, Any]] = {}
        for lead in leads:
            self._index(lead)

    def _index(self, lead: dict[str, Any]) -> None:
        if lead["phone"]:
            self.by_phone[lead["phone"]] = lead
        if lead["email"]:
            self.by_email[lead["email"]] = lead

    def rekey(self, lead: dict[str, Any], old_phone: str | None, old_email: str | None) -> None:
        """After a merge changed the lead's phone or email: its old keys no longer find it."""
        if old_phone and self.by_phone.get(old_phone) is lead:
            del self.by_phone[old_phone]
        if old_email and self.by_email.get(old_email) is lead:
            del self.by_email[old_email]
        self._index(lead)

    @classmethod
    def load(cls, session: Session, accepted: list[Accepted]) -> KnownLeads:
        columns = [Lead.id, *(getattr(Lead, c) for c in IMPORTED_COLUMNS)]
        count = session.scalar(select(func.count(Lead.id))) or 0
        if count == 0:
            return cls([])
        phones = {values[PHONE_AT] for _row, values, _tags in accepted if values[PHONE_AT]}
        emails = {values[EMAIL_AT] for _row, values, _tags in accepted if values[EMAIL_AT]}
        if count <= FEW_LEADS:
            # Reading every lead of a small tenant once beats thousands of key look-ups.
            rows = [r for r in session.execute(select(*columns)) if r.phone in phones or r.email in emails]
        else:
            rows = []
            postgres = session.get_bind().dialect.name == "postgresql"
            for column, keys in ((Lead.phone, sorted(phones)), (Lead.email, sorted(emails))):
                # One query per key, not "phone IN (...) OR email IN (...)": with OR, SQLite scans
                # every lead of the tenant instead of using the two unique indexes. PostgreSQL
                # takes each chunk of keys as one array parameter rather than thousands of them.
                size = LOOKUP_CHUNK_POSTGRES if postgres else LOOKUP_CHUNK_SQLITE
                for part in chunks(keys, size):
                    condition = (
                        column == any_(bindparam("keys", part, type_=ARRAY(String)))
                        if postgres
                        else column.in_(part)
                    )
                    rows.extend(session.execute(select(*columns).where(condition)))
        by_id = {r.id: dict(r._mapping) for r in rows}
        return cls(list(by_id.values()))


class LeadWriter:
    """Writes one import's leads in bulk below the ORM: COPY on PostgreSQL, executemany on SQLite.

    The ORM's insert path costs more per row than the database does; this one converts values
    with the columns' own types, and since it bypasses the session's tenant hooks it checks the
    session's tenant itself and stamps that tenant on every row.
    """

    def __init__(self, session: Session, tenant_id: int, import_id: int, now: datetime) -> None:
        if session.info.get(TENANT_KEY) != tenant_id or session.info.get(SYSTEM_KEY):
            raise TenantScopeError(f"the import for tenant {tenant_id} needs that tenant's session")
        self.session = session
        self.tenant_id = tenant_id
        self.import_id = import_id
        self.now = now
        self.dialect = session.get_bind().dialect
        self.postgres = self.dialect.name == "postgresql"
        table = Lead.__table__
        fixed = ("tenant_id", "import_id", "created_at", "updated_at")
        self.columns = (*fixed, *IMPORTED_COLUMNS, "search_text")
        processors = [
            table.c[name].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            for name in self.columns[: len(fixed) + len(IMPORTED_COLUMNS)]
        ]
        stamp = [tenant_id, import_id, now, now]
        self.prefix = tuple(p(v) if p else v for p, v in zip(processors, stamp, strict=False))
        self.processors = [(i, p) for i, p in enumerate(processors[len(fixed) :]) if p is not None]

    def _row(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        converted = list(values)
        converted[CUSTOM_AT] = converted[CUSTOM_AT] or {}
        converted[ALTERNATES_AT] = converted[ALTERNATES_AT] or []
        for index, process in self.processors:
            converted[index] = process(converted[index])
        # The bulk path bypasses the ORM's mapper events: fold the search text here.
        search_text = lead_search_text(dict(zip(IMPORTED_COLUMNS, values, strict=True)))
        return (*self.prefix, *converted, search_text)

    def _new_ids(self, count: int) -> list[int]:
        """Ids for leads about to be inserted, so their tags can be written with them."""
        connection = self.session.connection()
        if self.postgres:
            return list(
                connection.exec_driver_sql(
                    "SELECT nextval(pg_get_serial_sequence('leads', 'id')) "
                    f"FROM generate_series(1, {int(count)})"
                ).scalars()
            )
        # The transaction holds SQLite's write lock (BEGIN IMMEDIATE) and the table has no
        # AUTOINCREMENT: these are the rowids SQLite itself would hand out next.
        highest = connection.exec_driver_sql("SELECT max(id) FROM leads").scalar() or 0
        return list(range(highest + 1, highest + 1 + count))

    def insert(self, leads: list[tuple[Any, ...]], with_ids: bool) -> list[int]:
        """Insert the leads (values in IMPORTED_COLUMNS order); their ids when with_ids is set."""
        if not leads:
            return []
        ids = self._new_ids(len(leads)) if with_ids else []
        columns = ("id", *self.columns) if with_ids else self.columns
        rows = [self._row(values) for values in leads]
        if with_ids:
            rows = [(lead_id, *row) for lead_id, row in zip(ids, rows, strict=True)]
        self.session.flush()  # the import's own row goes first (the leads refer to it)
        connection = self.session.connection()
        if self.postgres:
            raw = connection.connection.driver_connection
            assert raw is not None  # a checked-out connection always has its psycopg connection
            names = ", ".join(columns)
            # PostgreSQL refuses COPY into a table under row-level security (a tenant session's
            # transaction runs under it): COPY into a staging table of this transaction, then
            # one INSERT ... SELECT, which the tenant's policy checks row by row.
            with raw.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS pg_temp.leads_import_rows")
                cursor.execute(
                    "CREATE TEMP TABLE leads_import_rows ON COMMIT DROP AS "
                    f"SELECT {names} FROM leads WITH NO DATA"
                )
                with cursor.copy(f"COPY leads_import_rows ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(f"INSERT INTO leads ({names}) SELECT {names} FROM leads_import_rows")
        else:
            marks = ", ".join("?" * len(columns))
            connection.exec_driver_sql(f"INSERT INTO leads ({', '.join(columns)}) VALUES ({marks})", rows)
        return ids


def save_chunk(
    writer: LeadWriter,
    known: KnownLeads,
    chunk: list[Accepted],
    policy: DuplicatePolicy,
    import_tags: tuple[str, ...],
    max_custom_fields: int,
) -> tuple[int, int, int]:
    """Insert the new leads of one chunk and merge the known ones; returns the three counts."""
    new_leads: list[tuple[Any, ...]] = []
    new_tags: list[tuple[str, ...]] = []
    changed: dict[int, dict[str, Any]] = {}
    tag_targets: list[tuple[int, tuple[str, ...]]] = []
    updated = duplicates = 0
    for _row, values, row_tags in chunk:
        match_phone = known.by_phone.get(values[PHONE_AT]) if values[PHONE_AT] else None
        match_email = known.by_email.get(values[EMAIL_AT]) if values[EMAIL_AT] else None
        if match_phone is None and match_email is None:
            new_leads.append(values)
            new_tags.append(row_tags + import_tags)
            continue
        match = match_phone if match_phone is not None else match_email
        assert match is not None  # the row matched at least one lead to get here
        if match_phone is not None and match_email is not None and match_phone is not match_email:
            duplicates += 1  # phone and email belong to two different leads: touch neither
            continue
        if policy is DuplicatePolicy.skip:
            duplicates += 1
            continue
        change = _merge(match, values, policy, max_custom_fields)
        if change:
            old_phone, old_email = match["phone"], match["email"]
            match.update(change)
            known.rekey(match, old_phone, old_email)
            # Last changed last: a lead that takes a key another lead gave up is written after it.
            changed.pop(match["id"], None)
            changed[match["id"]] = match
            updated += 1
        else:
            duplicates += 1
        tag_targets.append((match["id"], row_tags + import_tags))
    session = writer.session
    if changed:
        # Updates before inserts: a key an update frees may be the key of a new lead. Every row
        # sets every column, so the ORM sends them as one batch, in order.
        session.execute(
            update(Lead),
            [
                {
                    "id": lead["id"],
                    **{c: lead[c] for c in IMPORTED_COLUMNS},
                    "updated_at": writer.now,
                    "search_text": lead_search_text(lead),
                }
                for lead in changed.values()
            ],
        )
    ids = writer.insert(new_leads, with_ids=any(new_tags))
    tag_targets.extend(zip(ids, new_tags, strict=False))
    _add_tags(session, writer.tenant_id, tag_targets)
    return len(new_leads), updated, duplicates


def _merge(
    existing: dict[str, Any], values: tuple[Any, ...], policy: DuplicatePolicy, max_custom_fields: int
) -> dict[str, Any]:
    """The changes the row makes to an existing lead under the policy ({} when none)."""
    change: dict[str, Any] = {}
    for name, new in zip(IMPORTED_COLUMNS, values, strict=True):
        old = existing[name]
        if name == "custom_fields":
            merged = dict(old or {})
            for key, value in (new or {}).items():
                if key in merged:
                    if policy is DuplicatePolicy.overwrite:
                        merged[key] = value
                elif len(merged) < max_custom_fields:  # a lead never outgrows the cap
                    merged[key] = value
            if merged != (old or {}):
                change[name] = merged
            continue
        if name == "alternates":
            # Every policy but skip keeps the row's other phones and emails beside the lead's own.
            present = {(a["channel"], a["value"]) for a in old or []}
            added = [a for a in new or [] if (a["channel"], a["value"]) not in present]
            if added:
                change[name] = [*(old or []), *added]
            continue
        if new is None or new == old:
            continue
        if policy is DuplicatePolicy.overwrite or old is None or old == "":
            change[name] = new
    return change


def _add_tags(session: Session, tenant_id: int, targets: list[tuple[int, tuple[str, ...]]]) -> None:
    wanted = {(lead_id, tag) for lead_id, tags in targets for tag in tags}
    if not wanted:
        return
    lead_ids = sorted({lead_id for lead_id, _tag in wanted})
    present: set[tuple[int, str]] = set()
    for ids in chunks(lead_ids, LOOKUP_CHUNK_SQLITE):
        present.update(
            (lead_id, tag)
            for lead_id, tag in session.execute(
                select(LeadTag.lead_id, LeadTag.tag).where(LeadTag.lead_id.in_(ids))
            )
        )
    rows = [
        {"tenant_id": tenant_id, "lead_id": lead_id, "tag": tag} for lead_id, tag in sorted(wanted - present)
    ]
    if rows:
        session.execute(insert(LeadTag), rows)


