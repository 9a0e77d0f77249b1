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
    "=HYPERLINK(\"http://evil.example\",\"click\")",
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
