"""Benchmark of the lead import against the baseline a user would otherwise script.

Generates a messy 100,000-row CSV and XLSX (mixed phone formats, 5% duplicates in another format,
2% invalid rows) and a 500,000-row CSV, imports each into a fresh SQLite database and, when
LEADFLOW_BENCH_POSTGRES_URL (or LEADFLOW_TEST_DATABASE_URL) names one, into PostgreSQL, and times
the baseline: `pandas.read_csv` plus a bulk insert of the raw rows with no validation. Every
measurement runs in its own process, so its peak memory (max RSS, interpreter included) is its own.

    python bench/import_bench.py            # the whole table
    python bench/import_bench.py --quick    # 100k CSV on SQLite only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

HEADERS = ["First Name", "Last Name", "Phone", "Email", "Company", "Title", "Website", "City",
           "Country", "Notes"]
AREA_CODES = ["201", "202", "206", "212", "213", "303", "305", "312", "313", "404", "415", "503",
              "512", "602", "617", "646", "702", "713", "718", "801", "808", "818", "917", "919"]
FIRST = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Tim", "Barbara", "Dennis",
         "Frances", "Chloé", "José"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Liskov", "Ritchie",
        "O'Neil", "Müller"]
SEED = 100_000


def _formats(area: str, exchange: str, line: str) -> list[str]:
    return [f"+1{area}{exchange}{line}", f"({area}) {exchange}-{line}", f"{area}.{exchange}.{line}",
            f"1-{area}-{exchange}-{line}", f"+1 {area} {exchange} {line}",
            f"{area}-{exchange}-{line} ext. 12", f"'{area}{exchange}{line}"]


def generate_rows(count: int, seed: int = SEED) -> list[list[str]]:
    """Messy leads: unique valid numbers in mixed formats, 5% re-formatted duplicates, 2% invalid."""
    import phonenumbers

    rng = random.Random(seed)
    rows: list[list[str]] = []
    used: set[str] = set()
    originals: list[tuple[str, str, str, int]] = []
    while len(rows) < count:
        roll = rng.random()
        if roll < 0.05 and originals:
            area, exchange, line, index = rng.choice(originals)
            original = rows[index]
            # The same lead again, phone in another format and email in capitals.
            rows.append([original[0], original[1], rng.choice(_formats(area, exchange, line)),
                         original[3].upper(), original[4], "", "", "", "", "duplicate"])
            continue
        if roll < 0.07:
            rows.append([rng.choice(FIRST), rng.choice(LAST), rng.choice(["12345", "555-0100x", ""]),
                         rng.choice(["not-an-email", "x@", ""]), "Broken Data Inc", "", "", "", "",
                         "invalid"])
            continue
        area, exchange = rng.choice(AREA_CODES), str(rng.randint(200, 999))
        line = f"{rng.randint(0, 9999):04d}"
        key = area + exchange + line
        if key in used or not phonenumbers.is_valid_number(phonenumbers.parse("+1" + key)):
            continue
        used.add(key)
        index = len(rows)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = f"Example {index % 997} Ltd"
        originals.append((area, exchange, line, index))
        rows.append([first, last, rng.choice(_formats(area, exchange, line)),
                     f"{first.lower()}.{index}@example{index % 50}.com", company,
                     rng.choice(["CTO", "Head of Sales", "Founder", ""]),
                     rng.choice([f"https://www.example{index % 97}.com/", f"example{index % 97}.org", ""]),
                     rng.choice(["Boston", "Seattle", ""]), rng.choice(["US", "United States", ""]),
                     rng.choice(["", "Met at the fair", "=cmd|' /C calc'!A0"])])
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows)


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                               "strings_to_numbers": False})
    sheet = workbook.add_worksheet("Leads")
    sheet.write_string(0, 0, "Benchmark leads")
    for col, header in enumerate(HEADERS):
        sheet.write_string(2, col, header)
    for index, row in enumerate(rows, start=3):
        for col, value in enumerate(row):
            if value:
                sheet.write_string(index, col, value)
    workbook.close()


# --- one measurement, in its own process --------------------------------------------------

def _fresh_database(url: str) -> object:
    from sqlalchemy import text

    from core.config import Settings
    from core.db import Database

    settings = Settings(_env_file=None, database_url=url, migrate_on_start=False,  # type: ignore[call-arg]
                        import_max_bytes=500 * 1024 * 1024, import_max_rows=1_000_000, dev_mode=True)
    database = Database(settings)
    if not database.is_sqlite:
        with database.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    database.migrate()
    return database


def measure(kind: str, path: Path, url: str) -> dict[str, float]:
    import pandas  # noqa: F401  (imported before the clock starts, for both cases)

    from core.leads.importer import import_leads
    from core.permissions import system_actor
    from core.tenants import create_tenant

    database = _fresh_database(url)
    tenant_id = create_tenant(database, "Bench", "US").id  # type: ignore[arg-type]
    actor = system_actor(tenant_id)
    start = time.perf_counter()
    if kind == "baseline":
        imported = _baseline(database, tenant_id, path)
    else:
        summary = import_leads(database, actor, file_name=path.name, data=path.read_bytes(),  # type: ignore[arg-type]
                               save_mapping=False)
        imported = summary.imported
    seconds = time.perf_counter() - start
    database.dispose()  # type: ignore[attr-defined]
    return {"seconds": seconds, "imported": imported, "peak_mb": peak_memory_mb()}


def peak_memory_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a
    child would report its parent's peak at the fork (the parent holds the generated rows)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline(database: object, tenant_id: int, path: Path) -> int:
    """What a user would script: read_csv and insert the raw strings, no checks at all."""
    from datetime import UTC, datetime

    import pandas as pd
    from sqlalchemy import insert

    from core.models import Lead

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    # The leads table is unique on phone and email: blank out exact repeats so the insert runs.
    for column in ("Phone", "Email"):
        frame.loc[frame.duplicated(column), column] = ""
    now = datetime.now(UTC)
    columns = {"First Name": "first_name", "Last Name": "last_name", "Phone": "phone",
               "Email": "email", "Company": "company", "Title": "title", "Website": "website",
               "City": "city", "Notes": "notes"}
    records = frame[list(columns)].rename(columns=columns).to_dict("records")
    with database.session(tenant_id=tenant_id) as session, session.begin():  # type: ignore[attr-defined]
        for start in range(0, len(records), 2000):
            chunk = records[start : start + 2000]
            for record in chunk:
                record.update(tenant_id=tenant_id, phone=record["phone"][:20] or None,
                              email=record["email"] or None, custom_fields={}, created_at=now,
                              updated_at=now)
            session.execute(insert(Lead).execution_options(render_nulls=True), chunk)
    return len(records)


# --- the table ----------------------------------------------------------------------------

def run_case(kind: str, path: Path, url: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path), url],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 100k CSV on SQLite")
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, file, url = args.measure
        print(json.dumps(measure(kind, Path(file), url)))
        return
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    OUT.mkdir(parents=True, exist_ok=True)
    rows_100k = generate_rows(100_000)
    csv_100k, xlsx_100k, csv_500k = OUT / "leads_100k.csv", OUT / "leads_100k.xlsx", OUT / "leads_500k.csv"
    write_csv(csv_100k, rows_100k)
    postgres = os.environ.get("LEADFLOW_BENCH_POSTGRES_URL") or os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    cases: list[tuple[str, str, Path, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("SQLite", lambda name: f"sqlite:///{tmp}/{name}.db")]
        if postgres and postgres.startswith("postgresql") and not args.quick:
            backends.append(("PostgreSQL", lambda _name: postgres))
        for backend, url_for in backends:
            cases.append((f"baseline: read_csv + raw insert, 100k CSV, {backend}", "baseline",
                          csv_100k, url_for("baseline")))
            cases.append((f"import 100k CSV, {backend}", "import", csv_100k, url_for("csv")))
            if not args.quick:
                if not xlsx_100k.exists():
                    write_xlsx(xlsx_100k, rows_100k)
                cases.append((f"import 100k XLSX, {backend}", "import", xlsx_100k, url_for("xlsx")))
        if not args.quick:
            write_csv(csv_500k, generate_rows(500_000, seed=SEED + 1))
            cases.append(("import 500k CSV, SQLite", "import", csv_500k, f"sqlite:///{tmp}/big.db"))
        results = [(label, run_case(kind, path, url)) for label, kind, path, url in cases]
    baselines = {label.rsplit(", ", 1)[-1]: r["seconds"] for label, r in results
                 if label.startswith("baseline")}
    print(f"| {'case':<48} | {'rows':>7} | {'imported':>8} | {'seconds':>7} | {'rows/s':>7} "
          f"| {'peak MB':>7} | {'x baseline':>10} |")
    print(f"|{'-' * 50}|{'-' * 9}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 12}|")
    for label, r in results:
        rows = 500_000 if "500k" in label else 100_000
        backend = label.rsplit(", ", 1)[-1]
        compared = label.startswith("import 100k CSV")
        ratio = f"{r['seconds'] / baselines[backend]:.2f}" if compared else ""
        print(f"| {label:<48} | {rows:>7,} | {int(r['imported']):>8,} | {r['seconds']:>7.2f} | "
              f"{rows / r['seconds']:>7,.0f} | {r['peak_mb']:>7,.0f} | {ratio:>10} |")
    print("\nTargets: 100k-row CSV in <= 10 s and <= 3x the baseline; 500k rows under 1,024 MB peak.")


if __name__ == "__main__":
    main()
