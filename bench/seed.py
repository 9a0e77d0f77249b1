"""Seed one large, deterministic tenant for the dashboard benchmark, fast.

PostgreSQL gets its rows through COPY, SQLite through executemany in large transactions; both
from the same generators, so the two databases hold the same shape of data (SQLite a tenth of
it by default). Rows are derived from their index with cheap integer hashes, not from a random
generator, so a run is reproducible and the generators stay fast in pure Python.

At scale 1.0: 1,000,000 leads, 20 campaigns with 50,000 enrolments each (1,000,000 campaign
leads), 5 events per enrolment (5,000,000 events), a first-touch message for every sent
enrolment (about 700,000), one or two LLM calls per drafted enrolment (about 1,100,000), a third
of the leads tagged, 10 imports and 5,000 audit entries. Campaigns started over the last 60
days, so this month's spend, the burn-down and every chart have data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, inspect, text

from core.auth import hash_password
from core.db import Database
from core.leads.search import lead_search_text
from core.models import Base

SEED_VERSION = 2  # 2: leads carry their folded search_text
BENCH_TENANT = "Bench"
BENCH_PASSWORD = "bench-password-not-secret"
CAMPAIGNS = 20
EVENTS_PER_ENROLMENT = 5
IMPORTS = 10
AUDIT_ENTRIES = 5_000
CHUNK_ROWS = 50_000
LEAD_SPREAD_SECONDS = 55 * 86_400

INDUSTRIES = ("retail", "software", "logistics", "healthcare", "finance", "manufacturing",
              "hospitality", "education", "construction", "real estate", "media", "energy")
TITLES = ("CEO", "CTO", "COO", "CFO", "VP Sales", "VP Marketing", "Head of Operations",
          "Sales Manager", "Marketing Manager", "Founder", "Owner", "Director", "Buyer",
          "Procurement Lead", "IT Manager", "Office Manager", "Store Manager", "Partner",
          "General Manager", "Account Executive", "Product Manager", "Engineer", "Analyst",
          "Consultant", "Head of Growth")
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon",
               "Kira", "Liam", "Maya", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara")
LAST_NAMES = ("Smith", "Jones", "Garcia", "Chen", "Okafor", "Müller", "Rossi", "Khan", "Silva",
              "Novak", "Kim", "Dubois", "Larsen", "Haddad", "Ito", "Walsh")
CITIES = (("New York", "US", "America/New_York"), ("Chicago", "US", "America/Chicago"),
          ("Denver", "US", "America/Denver"), ("Seattle", "US", "America/Los_Angeles"),
          ("London", "GB", "Europe/London"), ("Berlin", "DE", "Europe/Berlin"))
TAGS = ("vip", "webinar", "trade-show", "newsletter", "partner-referral")
NODES = ("validate", "research", "compose", "guard", "send")
VARIANTS = json.dumps([{"name": "A", "prompt": "Lead with time saved."},
                       {"name": "B", "prompt": "Lead with a customer story."}])
DRAFT = ("Hi {name}, teams like yours in {industry} cut manual follow-up by a third with Acme. "
         "Worth a 15-minute call next week to see if it fits? Reply STOP to opt out.")


@dataclass(frozen=True)
class Scale:
    leads: int
    enrolments_per_campaign: int

    @property
    def enrolments(self) -> int:
        return self.enrolments_per_campaign * CAMPAIGNS

    @property
    def events(self) -> int:
        return self.enrolments * EVENTS_PER_ENROLMENT

    @classmethod
    def of(cls, factor: float) -> Scale:
        return cls(leads=int(1_000_000 * factor), enrolments_per_campaign=int(50_000 * factor))


def _hash(i: int, salt: int) -> int:
    """A cheap, well-spread deterministic hash of an index, 0..99."""
    return ((i * 2_654_435_761 + salt * 40_503) >> 7) % 100


# --- the shape of one enrolment --------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    id: int
    campaign: int  # 0-based
    index: int  # within the campaign
    lead_id: int
    status: str
    drafted: bool
    message_status: str | None
    replied: bool
    processed_at: datetime
    cost_microusd: int


def _campaign_start(now: datetime, campaign: int) -> datetime:
    return now - timedelta(days=60 - 3 * campaign)


def _campaign_status(campaign: int) -> str:
    if campaign < 15:
        return "completed"
    return "paused" if campaign in (16, 18) else "running"


def _enrolment(now: datetime, scale: Scale, campaign: int, index: int) -> Enrolment:
    number = campaign * scale.enrolments_per_campaign + index
    # Each campaign enrols distinct leads; 37 is coprime with the lead count's factors 2 and 5,
    # so the stride visits different leads and campaigns overlap in their audiences.
    lead_id = 1 + (index * 37 + campaign * 50_021) % scale.leads
    start = _campaign_start(now, campaign)
    progress = index / scale.enrolments_per_campaign
    processed_at = start + timedelta(days=3 * progress, seconds=_hash(number, 1) * 13)
    live = _campaign_status(campaign) != "completed"
    if (live and progress > 0.7) or processed_at > now:
        return Enrolment(number + 1, campaign, index, lead_id, "pending", False, None, False,
                         start, 0)
    h = _hash(number, 2)
    if h < 72:
        status, drafted, message = "sent", True, "delivered" if h < 62 else "sent"
    elif h < 80:
        status, drafted, message = "skipped", False, None
    elif h < 86:
        status, drafted, message = "failed", True, None
    elif h < 90:
        status, drafted, message = "failed", True, "failed"
    elif h < 96:
        status, drafted, message = "awaiting_approval", True, None
    else:
        status, drafted, message = "deferred", False, None
    replied = status == "sent" and _hash(number, 3) < 6
    cost = 150 + (number * 7_919) % 400 if drafted else 0
    return Enrolment(number + 1, campaign, index, lead_id, status, drafted, message, replied,
                     processed_at, cost)


def enrolments(now: datetime, scale: Scale) -> Iterator[Enrolment]:
    for campaign in range(CAMPAIGNS):
        for index in range(scale.enrolments_per_campaign):
            yield _enrolment(now, scale, campaign, index)


# --- rows per table --------------------------------------------------------------------------


def _lead_rows(tenant_id: int, now: datetime, scale: Scale) -> Iterator[tuple[Any, ...]]:
    for i in range(scale.leads):
        lead_id = i + 1
        city, country, zone = CITIES[i % len(CITIES)]
        # Every lead exists before the first campaign starts (60 days ago).
        created = now - timedelta(days=120) + timedelta(seconds=(i * 7) % LEAD_SPREAD_SECONDS)
        opted_out = created + timedelta(days=30 + i % 40) if _hash(i, 4) < 2 else None
        company = f"Company {i % 50_000}"
        first, last = FIRST_NAMES[i % 20], LAST_NAMES[(i // 20) % 16]
        phone, email = f"+1{2_015_550_000 + i}", f"lead{i}@company{i % 50_000}.example"
        searched = {"first_name": first, "last_name": last, "email": email, "company": company,
                    "phone": phone}
        yield (lead_id, tenant_id, first, last, phone, email, company,
               TITLES[_hash(i, 5) % len(TITLES)], f"company{i % 50_000}.example",
               INDUSTRIES[_hash(i, 6) % len(INDUSTRIES)], city, country, zone, None, "{}",
               1 + i % IMPORTS, opted_out, None, created, created, lead_search_text(searched))


LEAD_COLUMNS = ("id", "tenant_id", "first_name", "last_name", "phone", "email", "company", "title",
                "website", "industry", "city", "country", "time_zone", "notes", "custom_fields",
                "import_id", "opted_out_at", "replied_at", "created_at", "updated_at", "search_text")


def _tag_rows(tenant_id: int, scale: Scale) -> Iterator[tuple[Any, ...]]:
    for i in range(0, scale.leads, 3):
        yield (i + 1, TAGS[i % len(TAGS)], tenant_id)


def _enrolment_rows(tenant_id: int, now: datetime, scale: Scale) -> Iterator[tuple[Any, ...]]:
    for e in enrolments(now, scale):
        draft = DRAFT.format(name=FIRST_NAMES[e.lead_id % 20],
                             industry=INDUSTRIES[e.lead_id % 12]) if e.drafted else None
        research = (json.dumps([{"fact": "Works in " + INDUSTRIES[e.lead_id % 12],
                                 "source": "lead.industry"}]) if e.drafted else "[]")
        guard = '{"passed": true, "segments": 2, "encoding": "GSM-7"}' if e.drafted else "{}"
        done = e.status in ("sent", "skipped", "failed")
        yield (e.id, tenant_id, e.campaign + 1, e.lead_id, "AB"[e.index % 2], 0, e.status,
               None, None if done else e.processed_at, 1 if e.status != "pending" else 0,
               research, draft, guard, f"{e.id:032x}" if e.drafted else None, e.cost_microusd,
               900 + e.cost_microusd if e.drafted else 0, 60 + e.cost_microusd // 10 if e.drafted else 0,
               e.processed_at + timedelta(hours=5) if e.replied else None,
               _campaign_start(now, e.campaign), e.processed_at,
               e.processed_at if done else None)


ENROLMENT_COLUMNS = ("id", "tenant_id", "campaign_id", "lead_id", "variant", "step", "status",
                     "status_reason", "next_action_at", "attempts", "research", "draft_body",
                     "guard_result", "trace_id", "cost_microusd", "input_tokens", "output_tokens",
                     "replied_at", "created_at", "updated_at", "completed_at")


def _message_rows(tenant_id: int, now: datetime, scale: Scale) -> Iterator[tuple[Any, ...]]:
    for e in enrolments(now, scale):
        if e.message_status is None:
            continue
        sent = e.processed_at + timedelta(seconds=40)
        delivered = sent + timedelta(seconds=5) if e.message_status == "delivered" else None
        yield (e.id, tenant_id, e.campaign + 1, e.id, e.lead_id, 0, "sms",
               f"+1{2_015_550_000 + e.lead_id - 1}",
               DRAFT.format(name=FIRST_NAMES[e.lead_id % 20], industry=INDUSTRIES[e.lead_id % 12]),
               2, "outbox", f"outbox-{e.id}", e.message_status, f"{e.id}-0", sent,
               None if e.message_status == "failed" else sent, delivered)


MESSAGE_COLUMNS = ("id", "tenant_id", "campaign_id", "campaign_lead_id", "lead_id", "step",
                   "channel", "to_address", "body", "segments", "provider", "provider_message_id",
                   "status", "idempotency_key", "created_at", "sent_at", "delivered_at")


def _llm_call_rows(tenant_id: int, now: datetime, scale: Scale) -> Iterator[tuple[Any, ...]]:
    call_id = 0
    for e in enrolments(now, scale):
        if not e.drafted:
            continue
        model = "gpt-4o" if e.campaign % 3 == 0 else "gpt-4o-mini"
        research = e.cost_microusd // 4 if e.id % 3 == 0 else 0
        calls = [("research", research)] if research else []
        calls.append(("compose", e.cost_microusd - research))
        for node, cost in calls:
            call_id += 1
            yield (call_id, tenant_id, e.campaign + 1, e.id, node, "offline", model,
                   700 + cost, 40 + cost // 10, cost, 300 + cost, e.processed_at)


LLM_CALL_COLUMNS = ("id", "tenant_id", "campaign_id", "campaign_lead_id", "node", "provider",
                    "model", "input_tokens", "output_tokens", "cost_microusd", "latency_ms",
                    "created_at")


def _event_rows(tenant_id: int, now: datetime, scale: Scale) -> Iterator[tuple[Any, ...]]:
    event_id = 0
    for e in enrolments(now, scale):
        nodes = NODES if e.status != "pending" else ("validate",) + ("deferred",) * 4
        for offset, node in enumerate(nodes):
            event_id += 1
            level = "error" if e.status == "failed" and offset == 3 else "info"
            yield (event_id, tenant_id, e.campaign + 1, e.id, None, node, level,
                   f"{node}: {e.status}", "{}", e.processed_at + timedelta(seconds=offset * 2))


EVENT_COLUMNS = ("id", "tenant_id", "campaign_id", "campaign_lead_id", "trace_id", "node", "level",
                 "message", "data", "created_at")


# --- writers ---------------------------------------------------------------------------------


def _python_defaults(table: Table, columns: Sequence[str]) -> dict[str, Any]:
    """Values for NOT NULL columns the generators do not know (added by later migrations)."""
    extra: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in columns or column.nullable or column.primary_key or default is None:
            continue
        if default.is_scalar:
            value = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            value = default.arg(None)  # type: ignore[attr-defined]
        else:
            continue
        if isinstance(value, datetime):
            value = _naive(value)
        extra[column.name] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return extra


def _with_defaults(table: Table, columns: Sequence[str],
                   rows: Iterable[tuple[Any, ...]]) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    extra = _python_defaults(table, columns)
    names = [*columns, *extra]
    tail = tuple(extra.values())
    return names, (row + tail for row in rows)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _write(db: Database, table_name: str, columns: Sequence[str],
           rows: Iterable[tuple[Any, ...]]) -> int:
    table = Base.metadata.tables[table_name]
    names, full_rows = _with_defaults(table, columns, rows)
    column_list = ", ".join(f'"{n}"' for n in names)
    written = 0
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_sqlite:
            statement = f'INSERT INTO "{table_name}" ({column_list}) VALUES ({", ".join("?" * len(names))})'
            # The engine's SQLite connections are in autocommit mode: one explicit transaction
            # per table instead of one per row.
            cursor.execute("BEGIN")
            chunk: list[tuple[Any, ...]] = []
            for row in full_rows:
                chunk.append(tuple(_sqlite_value(v) for v in row))
                if len(chunk) >= CHUNK_ROWS:
                    cursor.executemany(statement, chunk)
                    written += len(chunk)
                    chunk = []
            if chunk:
                cursor.executemany(statement, chunk)
                written += len(chunk)
            cursor.execute("COMMIT")
        else:
            _skip_foreign_key_triggers(raw)
            with cursor.copy(f'COPY "{table_name}" ({column_list}) FROM STDIN') as copy:
                for row in full_rows:
                    copy.write_row(row)
                    written += 1
            raw.commit()
    finally:
        raw.close()
    return written


def _skip_foreign_key_triggers(raw: Any) -> None:
    """Skip the per-row foreign-key checks during COPY when the role may (a superuser).

    The generators only reference rows they wrote before (tests/bench/test_seed.py checks it on
    SQLite with foreign_key_check); without the privilege the checks simply run.
    """
    from psycopg.errors import InsufficientPrivilege

    try:
        raw.cursor().execute("SET session_replication_role = replica")
    except InsufficientPrivilege:
        raw.rollback()


def _write_table(db: Database, table_name: str, columns: Sequence[str],
                 rows: Iterable[tuple[Any, ...]]) -> int:
    """Write a large table; on PostgreSQL its secondary indexes are built after the load."""
    if db.is_sqlite:
        return _write(db, table_name, columns, rows)
    table = Base.metadata.tables[table_name]
    # One sorted build per index after the load is several times faster than maintaining
    # every index row by row during it. Unique indexes stay: they are constraints.
    secondary = [index for index in table.indexes if not index.unique]
    with db.engine.begin() as conn:
        for index in secondary:
            index.drop(conn)
    written = _write(db, table_name, columns, rows)
    with db.engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        for index in secondary:
            index.create(conn)
    return written


def reset_schema(db: Database) -> None:
    """An empty database at the newest migration."""
    if db.is_sqlite:
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    else:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.migrate()


def _small_tables(db: Database, now: datetime, scale: Scale) -> int:
    with db.engine.begin() as conn:
        tenant_id = conn.execute(
            text("INSERT INTO tenants (name, default_country, send_window_start, send_window_end, "
                 "weekdays_only, link_allow_list, playbook, price_overrides, monthly_budget_microusd, "
                 "created_at) VALUES (:name, 'US', '08:00', '21:00', false, '[]', '{}', '{}', "
                 ":budget, :now) RETURNING id"),
            {"name": BENCH_TENANT, "budget": 250 * 1_000_000, "now": _naive(now)},
        ).scalar_one()
    password_hash = hash_password(BENCH_PASSWORD)
    users = [(i + 1, f"bench-{role}", f"Bench {role.title()}", f"{role}@bench.example", password_hash,
              role, 0, True, _naive(now), tenant_id)
             for i, role in enumerate(("owner", "admin", "manager", "analyst"))]
    _write(db, "users", ("id", "username", "name", "email", "password_hash", "role", "failed_logins",
                         "active", "created_at", "tenant_id"), users)
    imports = [(i + 1, f"leads-{i + 1}.csv", f"{i:064x}", "{}", "skip", "completed",
                scale.leads // IMPORTS, scale.leads // IMPORTS, 0, 0, 0, "[]",
                _naive(now) - timedelta(days=90 - i), 2, tenant_id) for i in range(IMPORTS)]
    _write(db, "lead_imports", ("id", "file_name", "sha256", "mapping", "on_duplicate", "status",
                                "rows_total", "rows_imported", "rows_updated", "rows_duplicate",
                                "rows_rejected", "rejects", "created_at", "created_by", "tenant_id"),
           imports)
    campaigns = []
    for c in range(CAMPAIGNS):
        start = _naive(_campaign_start(now, c))
        status = _campaign_status(c)
        campaigns.append((c + 1, tenant_id, f"Campaign {c + 1:02d}", "sms", status,
                          "You write short, friendly SMS for Acme.",
                          VARIANTS,
                          "gpt-4o" if c % 3 == 0 else "gpt-4o-mini", 0.7, "{}",
                          '[{"delay_hours": 0}]', False, 2, 40 * 1_000_000, c % 4 == 0, 3,
                          start - timedelta(days=1), start, start,
                          start + timedelta(days=3) if status == "completed" else None))
    _write(db, "campaigns", ("id", "tenant_id", "name", "channel", "status", "system_prompt",
                             "variants", "model", "temperature", "audience", "steps",
                             "research_web", "max_sms_segments", "budget_cap_microusd",
                             "approval_required", "created_by", "created_at", "updated_at",
                             "started_at", "completed_at"), campaigns)
    actions = ("login", "update", "create", "export", "start")
    audit: list[tuple[Any, ...]] = [
        (i + 1, tenant_id, 1 + i % 4, actions[i % 5], "campaign", str(1 + i % CAMPAIGNS), "{}",
         _naive(now) - timedelta(minutes=17 * i))
        for i in range(AUDIT_ENTRIES - 1)]
    audit.append((AUDIT_ENTRIES, tenant_id, None, "bench_seed", "tenant", str(tenant_id),
                  json.dumps({"version": SEED_VERSION, "leads": scale.leads,
                              "enrolments": scale.enrolments, "seeded_at": now.isoformat()}),
                  _naive(now)))
    _write(db, "audit_log", ("id", "tenant_id", "user_id", "action", "entity", "entity_id",
                             "details", "created_at"), audit)
    return int(tenant_id)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def seed(db: Database, factor: float, *, log: Callable[[str], None] = print) -> dict[str, int]:
    """Reset the schema and seed the bench tenant; returns rows written per table."""
    import time

    scale = Scale.of(factor)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    naive_now = _naive(now)
    reset_schema(db)
    tenant_id = _small_tables(db, now, scale)
    plan: list[tuple[str, Sequence[str], Iterable[tuple[Any, ...]]]] = [
        ("leads", LEAD_COLUMNS, _lead_rows(tenant_id, naive_now, scale)),
        ("lead_tags", ("lead_id", "tag", "tenant_id"), _tag_rows(tenant_id, scale)),
        ("campaign_leads", ENROLMENT_COLUMNS, _enrolment_rows(tenant_id, naive_now, scale)),
        ("messages", MESSAGE_COLUMNS, _message_rows(tenant_id, naive_now, scale)),
        ("llm_calls", LLM_CALL_COLUMNS, _llm_call_rows(tenant_id, naive_now, scale)),
        ("events", EVENT_COLUMNS, _event_rows(tenant_id, naive_now, scale)),
    ]
    written: dict[str, int] = {}
    for table_name, columns, rows in plan:
        started = time.perf_counter()
        written[table_name] = _write_table(db, table_name, columns, rows)
        log(f"  {table_name:<15} {written[table_name]:>10,} rows in {time.perf_counter() - started:6.1f} s")
    _finish(db)
    return written


def _finish(db: Database) -> None:
    """Move the id sequences past the copied ids and give the planner fresh statistics."""
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        return
    with db.engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if "id" in table.columns and table.columns["id"].autoincrement is not False:
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM \"{table.name}\"), 0) + 1, false)"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def seeded_scale(db: Database) -> dict[str, Any] | None:
    """The seed's description when this database holds the current bench seed, else None."""
    if "audit_log" not in inspect(db.engine).get_table_names():
        return None
    with db.engine.connect() as conn:
        details = conn.execute(text(
            "SELECT details FROM audit_log WHERE action = 'bench_seed' ORDER BY id DESC LIMIT 1"
        )).scalar()
    if details is None:
        return None
    found = details if isinstance(details, dict) else json.loads(details)
    return found if found.get("version") == SEED_VERSION else None
