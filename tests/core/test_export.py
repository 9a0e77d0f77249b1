"""CSV and XLSX exports neutralise formula injection and keep E.164 numbers readable."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import openpyxl
import pandas as pd
import pytest

from core.export import (
    dataframe_to_csv_bytes,
    dataframe_to_xlsx_bytes,
    neutralise_text,
    safe_sheet_name,
    strip_neutralising_prefix,
)

DANGEROUS = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+14155550100", "'+14155550100"),
        ("-5", "'-5"),
        ("@home", "'@home"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_text(value: str, expected: str) -> None:
    assert neutralise_text(value) == expected
    assert strip_neutralising_prefix(neutralise_text(value)) == value


def test_strip_leaves_an_ordinary_apostrophe() -> None:
    assert strip_neutralising_prefix("'tis") == "'tis"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["Ada", *DANGEROUS],
            "phone": ["+14155550100"] * 7,
            "count": [1, -5, 3, 4, 5, 6, 7],
        }
    )


def test_csv_round_trip_neutralises_every_dangerous_cell() -> None:
    data = dataframe_to_csv_bytes(_frame())
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["name", "phone", "count"]
    for row in rows[1:]:
        for cell in row[:2]:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    names = [strip_neutralising_prefix(r[0]) for r in rows[1:]]
    assert names == ["Ada", *DANGEROUS]
    # E.164 stays readable text with its plus; numbers stay numbers.
    assert {r[1] for r in rows[1:]} == {"'+14155550100"}
    assert rows[2][2] == "-5"


def test_xlsx_round_trip_writes_text_cells_never_formulas() -> None:
    data = dataframe_to_xlsx_bytes(_frame(), sheet_name="Leads")
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook["Leads"]
    rows = list(sheet.iter_rows(min_row=2))
    for row in rows:
        name, phone, count = row
        assert name.data_type == "s"
        assert phone.data_type == "s"
        assert not str(name.value).startswith(("=", "+", "-", "@", "\t", "\r"))
        # The E.164 number is bare text, protected by the quote-prefix style.
        assert phone.value == "+14155550100"
        assert phone.quotePrefix
        assert count.data_type == "n"
    names = [strip_neutralising_prefix(r[0].value) for r in rows]
    # openpyxl leaves XML's escape of a carriage return (_x000D_) as it is; Excel decodes it.
    assert names[:-1] == ["Ada", *DANGEROUS[:-1]]
    assert names[-1] == "'_x000D_=1+1"
    assert rows[1][2].value == -5


def test_xlsx_writes_dates_and_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "when": [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None],
            "day": [date(2026, 1, 2), None],
            "note": [None, "x"],
        }
    )
    workbook = openpyxl.load_workbook(io.BytesIO(dataframe_to_xlsx_bytes(frame)))
    sheet = workbook["Sheet1"]
    assert sheet["A2"].value == datetime(2026, 1, 2, 3, 4, 5)
    assert sheet["B2"].value == datetime(2026, 1, 2)
    assert sheet["C2"].value is None
    assert sheet["C3"].value == "x"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Leads", "Leads"), ("a/b:c", "a b c"), ("x" * 40, "x" * 31), ("", "Sheet1")],
)
def test_safe_sheet_name(name: str, expected: str) -> None:
    assert safe_sheet_name(name) == expected


# --- separators of other locales ----------------------------------------------------------

TRIGGER_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
HIDDEN = [
    "Acme;=1+1",
    'Acme,=HYPERLINK("http://evil.example")',
    "Acme\t@SUM(A1)",
    "Acme|-2+3",
    "Acme; =1+1",
    'Acme;"=1+1',
    "Acme; \"'+cmd|' /C calc'!A0",
    "Acme;\t=1",
    "one\n=2",
    "  =1+1",
    '"=1+1',
    "x,'-5",
    "it's fine; really",
]


def _cells(text: str, delimiter: str) -> list[str]:
    """The cells a spreadsheet splitting on `delimiter` could see: csv-parsed and naively split."""
    parsed = [c for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) for c in row]
    naive = [c for line in text.splitlines() for c in line.split(delimiter)]
    return parsed + naive


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_csv_read_with_any_separator_has_no_cell_starting_with_a_trigger(delimiter: str) -> None:
    frame = pd.DataFrame({"company": HIDDEN, "phone": ["+14155550100"] * len(HIDDEN)})
    text = dataframe_to_csv_bytes(frame).decode("utf-8-sig")
    for cell in _cells(text, delimiter):
        # What a spreadsheet skips before deciding a cell is a formula: spaces and quote marks.
        assert not cell.lstrip(' "').startswith(TRIGGER_STARTS), (delimiter, cell)


def test_csv_quotes_every_field_and_round_trips() -> None:
    frame = pd.DataFrame({"company": HIDDEN, "count": list(range(len(HIDDEN)))})
    text = dataframe_to_csv_bytes(frame).decode("utf-8-sig")
    assert text.splitlines()[1] == '"Acme;\'=1+1","0"'
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [strip_neutralising_prefix(r[0]) for r in rows[1:]] == HIDDEN
    # The E.164 convention is unchanged: '+1415... in CSV, stripped again on import.
    phone = dataframe_to_csv_bytes(pd.DataFrame({"phone": ["+14155550100"]})).decode("utf-8-sig")
    assert phone.splitlines()[1] == '"\'+14155550100"'


def test_the_importer_reads_a_csv_export_back_unchanged() -> None:
    from core.leads.readers import read_table

    frame = pd.DataFrame({"Phone": ["+14155550100"] * len(HIDDEN), "Company": HIDDEN})
    table = read_table(dataframe_to_csv_bytes(frame), "export.csv")
    assert table.frame["Company"].tolist() == HIDDEN
    assert set(table.frame["Phone"]) == {"+14155550100"}


def test_xlsx_cells_are_never_split_so_only_their_start_is_neutralised() -> None:
    from core.leads.readers import read_table

    frame = pd.DataFrame({"Phone": ["+14155550100"] * len(HIDDEN), "Company": HIDDEN})
    data = dataframe_to_xlsx_bytes(frame)
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Sheet1"]
    values = [row[1].value for row in sheet.iter_rows(min_row=2)]
    assert all(row[1].data_type == "s" for row in sheet.iter_rows(min_row=2))
    assert values[0] == "Acme;=1+1"  # one typed text cell: inert whatever the locale
    assert values[HIDDEN.index("  =1+1")] == "  '=1+1"
    assert not any(v.lstrip(' "').startswith(TRIGGER_STARTS) for v in values)
    table = read_table(data, "export.xlsx")
    assert table.frame["Company"].tolist() == HIDDEN
    assert set(table.frame["Phone"]) == {"+14155550100"}
