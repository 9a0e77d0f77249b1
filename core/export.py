"""CSV and XLSX downloads that a spreadsheet can open without running anything in them.

Formula injection: a text cell that starts with `=`, `+`, `-`, `@`, a tab, a carriage return or a
line feed can be taken for a formula by Excel, LibreOffice or Google Sheets. Every such text cell
is neutralised by putting an apostrophe in front of it (`=HYPERLINK(...)` becomes
`'=HYPERLINK(...)`), the OWASP recommendation. Numbers, booleans and dates are written as what
they are and are never neutralised: `-5` as a number is not a formula.

A CSV has no fixed separator: Excel in a German, French or Dutch locale splits on `;`, other
tools on tabs or `|`, so `Acme;=1+1` opens there as the cells `Acme` and `=1+1`, a live formula.
In CSV every field is therefore quoted, and a trigger is neutralised wherever a cell could begin
under any of those separators: at the start, after a `,` `;` `|` tab or line break, and after
any spaces or quote marks that follow one (`Acme; "=1+1` becomes `Acme; "'=1+1`). The importer
removes exactly those apostrophes again. XLSX cells are typed and never split, so there only the
start of a cell matters.

E.164 phone numbers (`+14155550100`) start with `+`, so:

- in CSV, which has no cell types, they are neutralised like any other text: `'+14155550100`.
  Left bare, a spreadsheet would read them as the formula `=14155550100` and show
  `1.41556E+10`, losing the plus and the digits. With the apostrophe the number stays readable
  text, and Leadflow's importer strips the apostrophe again (phones and any neutralised cell), so an
  export imports back unchanged.
- in XLSX, which has cell types, every text is written as a text cell (never as a formula, a
  number or a link). An E.164 number is written bare, with the cell's quote-prefix style (what
  Excel itself stores when someone types `'+1415...`): it shows as `+14155550100`, stays text when
  edited, and a `+` followed by digits only carries no formula even if some tool re-evaluates it.
  Every other dangerous text gets the visible apostrophe as in CSV, so it stays inert whatever
  tool later converts the workbook.

CSV files are UTF-8 with a byte-order mark, so Excel opens accented names correctly.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

import pandas as pd
import xlsxwriter

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
NEUTRALISING_PREFIX = "'"
# Where a spreadsheet may start a new cell in a CSV, whichever separator its locale uses; then
# what it may skip before the cell's content (spaces, quote marks); then a formula trigger.
_SEPARATOR = r"(^|[,;|\t\r\n])"
_FILLER = r"((?:[^\S\t\r\n]|[\"'])*)"
_TRIGGER = r"(?=[=+\-@\t\r\n])"
_CSV_DANGER = re.compile(_SEPARATOR + _FILLER + _TRIGGER)
# The apostrophe neutralise_csv_text put in (always the last filler before the trigger).
CSV_NEUTRALISED = re.compile(_SEPARATOR + _FILLER + "'" + _TRIGGER)
CSV_UNDO = r"\1\2"
# A typed cell (XLSX) is never split: only its own start, after any spaces or quote marks.
_START_DANGER = re.compile("^" + _FILLER + _TRIGGER)
START_NEUTRALISED = re.compile("^" + _FILLER + "'" + _TRIGGER)
START_UNDO = r"\1"
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
XLSX_MAX_ROWS = 1_048_576
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def neutralise_text(value: str) -> str:
    """The text with an apostrophe before its first character when a spreadsheet could take it
    for a formula (leading spaces and quote marks skipped, as some spreadsheets do)."""
    return _START_DANGER.sub(r"\1'", value, count=1)


def neutralise_csv_text(value: str) -> str:
    """The text with an apostrophe before every trigger that could start a cell in some locale."""
    return _CSV_DANGER.sub(r"\1\2'", value)


def strip_neutralising_prefix(value: str) -> str:
    """Undo `neutralise_csv_text` (and so `neutralise_text`): `'=x` becomes `=x`, `a;'=x` becomes
    `a;=x`; an apostrophe anywhere else is left alone."""
    if NEUTRALISING_PREFIX not in value:
        return value
    return CSV_NEUTRALISED.sub(CSV_UNDO, value)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _csv_cell(value: Any) -> Any:
    if _is_missing(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return neutralise_csv_text(str(value))


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    """Stream rows as injection-safe CSV text into `out` (opened with newline=""), every field quoted."""
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([neutralise_csv_text(str(c)) for c in columns])
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])


def rows_to_csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    write_csv(columns, rows, buffer)
    return buffer.getvalue().encode("utf-8-sig")


def dataframe_to_csv_bytes(df: pd.DataFrame) -> bytes:
    """The DataFrame as UTF-8 (with BOM) CSV bytes, formula injection neutralised."""
    return rows_to_csv_bytes([str(c) for c in df.columns], df.itertuples(index=False, name=None))


def safe_sheet_name(name: str) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    cleaned = _SHEET_NAME_FORBIDDEN.sub(" ", name).strip().strip("'") or "Sheet1"
    return cleaned[:31]


def write_xlsx(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    out: IO[bytes] | str,
    sheet_name: str = "Sheet1",
) -> int:
    """Stream rows into an injection-safe XLSX workbook; returns the number of data rows."""
    workbook = xlsxwriter.Workbook(
        out,
        {
            # Row by row with bounded memory, and never turn a text into a formula, number or link.
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    try:
        sheet = workbook.add_worksheet(safe_sheet_name(sheet_name))
        bold = workbook.add_format({"bold": True})
        quoted = workbook.add_format({"quote_prefix": True})
        date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
        time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for col, name in enumerate(columns):
            sheet.write_string(0, col, neutralise_text(str(name)), bold)
        count = 0
        for count, row in enumerate(rows, start=1):
            if count >= XLSX_MAX_ROWS:
                raise ValueError(
                    f"an XLSX sheet holds at most {XLSX_MAX_ROWS - 1:,} rows; export as CSV instead"
                )
            for col, value in enumerate(row):
                _write_xlsx_cell(sheet, count, col, value, quoted, date_format, time_format)
    finally:
        workbook.close()
    return count


def _write_xlsx_cell(
    sheet: Any, row: int, col: int, value: Any, quoted: Any, date_format: Any, time_format: Any
) -> None:
    if _is_missing(value):
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, (int, float, Decimal)):
        number = float(value)
        if math.isinf(number):
            sheet.write_string(row, col, str(value))
        else:
            sheet.write_number(row, col, number)
    elif isinstance(value, datetime):
        # Excel has no time zones: aware times are written as UTC wall-clock times.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        sheet.write_datetime(row, col, value, time_format)
    elif isinstance(value, date):
        sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), date_format)
    else:
        text = str(value)
        if E164_PATTERN.match(text):
            sheet.write_string(row, col, text, quoted)
        else:
            sheet.write_string(row, col, neutralise_text(text))


def rows_to_xlsx_bytes(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], sheet_name: str = "Sheet1"
) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(columns, rows, buffer, sheet_name)
    return buffer.getvalue()


def dataframe_to_xlsx_bytes(df: pd.DataFrame, sheet_name: str = "Sheet1") -> bytes:
    """The DataFrame as XLSX bytes: typed cells, texts never formulas, injection neutralised."""
    rows = (
        [v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in row]
        for row in df.itertuples(index=False, name=None)
    )
    return rows_to_xlsx_bytes([str(c) for c in df.columns], rows, sheet_name)
