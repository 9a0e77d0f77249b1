"""Writes data/sample_leads.csv and data/sample_leads.xlsx: about 200 plainly fake leads.

Run `python data/make_samples.py`; the output is the same every time (a fixed seed). Phones
use fictional ranges (NANP 555-01xx, Ofcom's London drama range 020 7946 0xxx), emails example
domains. A handful of rows are deliberately bad: invalid phones, malformed emails, duplicates in
another format.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent
HEADERS = ["First Name", "Last Name", "Mobile", "E-mail Address", "Company", "Job Title",
           "Industry", "Website", "City", "Country", "Notes", "Tags"]
FIRST = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Tim", "Barbara", "Dennis",
         "Frances", "Ken", "Radia", "Edsger", "Hedy", "John", "Sophie", "Niklaus", "Shafi", "Guido",
         "Anita", "Chloé", "José", "Zoë", "Seán", "Renée"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Berners-Lee",
        "Liskov", "Ritchie", "Allen", "Thompson", "Perlman", "Dijkstra", "Lamarr", "Backus",
        "Wilson", "Wirth", "Goldwasser", "van Rossum", "Borg", "O'Neil", "Müller", "García"]
COMPANIES = ["Example Widgets", "Sample Analytics", "Demo Logistics", "Placeholder Foods",
             "Fictional Freight", "Test Pattern Media", "Mock Robotics", "Dummy Dental",
             "Pretend Pharma", "Imaginary Insurance"]
TITLES = ["CTO", "Head of Sales", "Operations Manager", "Founder", "VP Marketing",
          "Procurement Lead", "IT Director", "Office Manager"]
INDUSTRIES = ["Software", "Logistics", "Food & Beverage", "Healthcare", "Media", "Insurance",
              "Manufacturing"]
US_PLACES = [("415", "San Francisco"), ("212", "New York"), ("312", "Chicago"),
             ("617", "Boston"), ("512", "Austin"), ("206", "Seattle"), ("303", "Denver")]
NOTES = ["Met at the 2026 trade show", "Asked for a demo", "", "", "Prefers email",
         "=HYPERLINK(\"http://evil.example\",\"click\")", "Call after 3pm", ""]


def _us_phone(area: str, line: str, style: int, extension: int) -> str:
    return [f"+1 {area} 555 {line}", f"({area}) 555-{line}", f"{area}.555.{line}",
            f"1-{area}-555-{line}", f"+1{area}555{line}", f"{area} 555 {line} x{extension}"][style]


def _uk_phone(line: str, style: int) -> str:
    return f"020 7946 {line}" if style % 2 else f"+44 20 7946 {line}"


def _bad(first: str, last: str, phone: str, email: str, note: str) -> list[str]:
    return [first, last, phone, email, "", "", "", "", "", "", note, ""]


def make_rows(count: int = 195, seed: int = 2026) -> list[list[str]]:
    rng = random.Random(seed)
    rows: list[list[str]] = []
    used: set[str] = set()
    while len(rows) < count:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(COMPANIES)
        suffix = rng.choice([".example.com", ".example.org", ".example.net"])
        domain = company.lower().replace(" ", "-") + suffix
        if rng.random() < 0.8:
            area, city = rng.choice(US_PLACES)
            line = f"01{rng.randint(0, 99):02d}"
            key = area + line
            phone = _us_phone(area, line, rng.randrange(6), rng.randint(10, 99))
            country = rng.choice(["US", "USA", "United States", ""])
        else:
            line = f"0{rng.randint(0, 999):03d}"
            key = "44" + line
            phone, city = _uk_phone(line, rng.randrange(2)), "London"
            country = rng.choice(["GB", "UK", "United Kingdom"])
        if key in used:
            continue
        used.add(key)
        email = f"{first}.{last}{len(rows)}@{domain}".lower().replace(" ", "").replace("'", "")
        name_first, name_last = (first.upper(), last.upper()) if rng.random() < 0.1 else (first, last)
        website = rng.choice([f"https://www.{domain}/", domain, f"http://{domain}/about", ""])
        rows.append([name_first, name_last, phone, email, company, rng.choice(TITLES),
                     rng.choice(INDUSTRIES), website, city, country, rng.choice(NOTES),
                     rng.choice(["", "", "vip", "trade show", "vip, partner"])])
    # Deliberately bad rows, each a lesson in what the import refuses or merges.
    rows.append(_bad("Ivan", "Invalid", "12345", "ivan.invalid@example.com", "phone too short"))
    rows.append(_bad("Mal", "Formed", "", "mal.formed@", "email without a domain"))
    rows.append(_bad("No", "Contact", "", "", "neither phone nor email"))
    rows.append(_bad("Bad", "Both", "555", "bad at example.com", "two problems"))
    first_us = next(r for r in rows if r[2].startswith(("+1", "(")))
    digits = "".join(ch for ch in first_us[2] if ch.isdigit())[-10:]
    rows.append(_bad(first_us[0], first_us[1], f"{digits[:3]}-{digits[3:6]}-{digits[6:]}", "",
                     "duplicate phone in another format"))
    rows.append(_bad("Dup", "Email", "", rows[1][3].upper(), "duplicate email in capitals"))
    return rows


def write_samples(directory: Path = HERE) -> tuple[Path, Path]:
    rows = make_rows()
    csv_path, xlsx_path = directory / "sample_leads.csv", directory / "sample_leads.xlsx"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    workbook = xlsxwriter.Workbook(str(xlsx_path), {"strings_to_formulas": False,
                                                    "strings_to_numbers": False})
    sheet = workbook.add_worksheet("Leads")
    # A title above the header, as exports from CRMs often have.
    sheet.write_string(0, 0, "Sample leads (fictional) exported from a CRM")
    for col, header in enumerate(HEADERS):
        sheet.write_string(2, col, header)
    for index, row in enumerate(rows, start=3):
        for col, value in enumerate(row):
            if value:
                sheet.write_string(index, col, value)
    workbook.close()
    return csv_path, xlsx_path


if __name__ == "__main__":
    for path in write_samples():
        print(f"wrote {path}")
