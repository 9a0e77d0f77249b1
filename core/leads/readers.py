"""Reading lead spreadsheets as text: CSV in any common encoding and delimiter, XLSX safely.

Every cell comes back as a string exactly as the person sees it: no `0044...` turned into
`44...`, no phone turned into `4.15555e+09`, formulas as their cached values. A file wider than
the column cap is refused before its rows are parsed (a CSV by its header, an XLSX at the first
row that is too wide), so a 16,384-column sheet costs a second, not minutes. Every cell is
bounded: control characters (a NUL byte, which PostgreSQL cannot store, and the other C0 controls
but tab, CR and LF) are removed and a cell longer than the cell cap is cut, each with a message
for its row, never a refusal of the file. The rules every reader shares are in
core/leads/tables.py, the XLSX reader and its safety checks in core/leads/xlsx.py.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

import pandas as pd

from core.errors import ValidationError
from core.export import CSV_NEUTRALISED, CSV_UNDO
from core.leads.tables import (
    HEADER_SEARCH_ROWS,
    RawTable,
    ReadLimits,
    bound_cells,
    check_row_count,
    clean_frame,
    find_header_row,
    too_many_columns,
    unique_headers,
)
from core.leads.xlsx import read_xlsx_table

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
XLSX_EXTENSIONS = (".xlsx",)
DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x19\x1b-\x1f]")
# More control bytes than this share of a sample is a binary file, not text with a stray NUL.
BINARY_CONTROL_SHARE = 0.05


def file_kind(file_name: str, data: bytes) -> str:
    """'csv' or 'xlsx', refusing a file that is not what its extension says."""
    suffix = PurePath(file_name).suffix.lower()
    is_zip = data[:4] == b"PK\x03\x04"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ValidationError(
            f"'{file_name}' is an old Excel (.xls) or other OLE file; save it as .xlsx or CSV"
        )
    if suffix in XLSX_EXTENSIONS:
        if not is_zip:
            raise ValidationError(f"'{file_name}' is not an XLSX workbook (it is not a zip file)")
        return "xlsx"
    if suffix in CSV_EXTENSIONS:
        if is_zip:
            raise ValidationError(
                f"'{file_name}' is not a CSV file: it looks like a zip or XLSX workbook; "
                "rename it to .xlsx if it is one"
            )
        if _looks_binary(data[:SNIFF_BYTES]):
            raise ValidationError(f"'{file_name}' is not a CSV file: it holds binary data")
        return "csv"
    raise ValidationError(f"'{file_name}' is not a supported file type: upload a .csv or .xlsx file")


def _looks_binary(sample: bytes) -> bool:
    """Binary when control bytes are common; a stray NUL in a text file is cleaned, not refused."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(sample):
        return False
    controls = len(_CONTROL_BYTES.findall(sample))
    return controls > BINARY_CONTROL_SHARE * len(sample)


def _utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when every other byte of an ASCII-ish text is NUL."""
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def detect_encoding(data: bytes) -> str:
    """The text encoding of a CSV: a BOM, else UTF-8, UTF-16 without BOM, cp1252, latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = data[: SNIFF_BYTES * 4]
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter (, ; tab |) that splits the first lines into the most consistent columns."""
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = [len(r) for r in csv.reader(lines, delimiter=delimiter) if any(c.strip() for c in r)]
        if not widths:
            continue
        common = max(set(widths), key=widths.count)
        if common < 2:
            continue
        score = (widths.count(common), common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(data: bytes, encoding: str, delimiter: str) -> Iterator[list[str]]:
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    return csv.reader(stream, delimiter=delimiter)


def _csv_header_row(data: bytes, encoding: str, delimiter: str, header_index: int) -> list[str]:
    """The header row's fields, read alone (a header may be longer than the sample)."""
    try:
        for index, row in enumerate(_csv_rows(data, encoding, delimiter)):
            if index == header_index:
                return row
    except csv.Error as exc:
        raise ValidationError(
            f"the header row of the CSV could not be read: {exc}; check its quotes"
        ) from exc
    return []


def _widest_row(data: bytes, encoding: str, delimiter: str) -> int:
    """The most fields any row has (read only when a row has more than the header and one more)."""
    try:
        return max((len(row) for row in _csv_rows(data, encoding, delimiter)), default=0)
    except csv.Error as exc:
        raise ValidationError(f"the CSV could not be read: {exc}; check its quotes") from exc


def _parse_csv(
    data: bytes, encoding: str, delimiter: str, skip: int, width: int, limits: ReadLimits
) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data),
        encoding=encoding,
        sep=delimiter,
        header=None,
        names=range(width),
        skiprows=skip,
        dtype=str,
        na_filter=False,
        keep_default_na=False,
        skip_blank_lines=False,
        nrows=limits.max_rows + 1,
        engine="c",
    )


def _align_to_header(
    frame: pd.DataFrame, width: int, first_row: int
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Cut the fields past the header's width: empty ones are a trailing delimiter (PrestaShop
    writes one more ';' than its header has), values are reported for their row."""
    if len(frame.columns) <= width:
        return frame, {}
    extra = frame.iloc[:, width:]
    filled = extra.ne("").any(axis=1)
    messages: dict[int, list[str]] = {}
    for index in filled[filled].index:
        values = [v for v in extra.loc[index].tolist() if v]
        named = ", ".join(f"'{v[:40]}'" for v in values[:3]) + (" ..." if len(values) > 3 else "")
        messages[first_row + int(index)] = [
            f"the row has {len(values):,} more {'value' if len(values) == 1 else 'values'} than the "
            f"header has columns ({named}): not read; check the delimiters of this row"
        ]
    return frame.iloc[:, :width], messages


def read_csv_table(data: bytes, limits: ReadLimits) -> RawTable:
    encoding = detect_encoding(data)
    sample = data[:SNIFF_BYTES].decode(encoding, errors="ignore")
    lines = sample.splitlines()[: HEADER_SEARCH_ROWS + 20]
    if len(data) > SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    if not any(line.strip() for line in lines):
        raise ValidationError("the file is empty")
    delimiter = sniff_delimiter(lines)
    first_rows = list(csv.reader(lines, delimiter=delimiter))
    header_index = find_header_row(first_rows)
    # The column cap is checked before pandas parses anything, on the whole header row (which may
    # run past the sample).
    raw_headers: list[Any] = _csv_header_row(data, encoding, delimiter, header_index)
    width = len(raw_headers)
    if width > limits.max_columns:
        raise too_many_columns(width, limits)
    # Rows are read one field wider than the header, so a trailing delimiter never shifts a row
    # (pandas would take the first column as an index); a row wider still is read in full to be reported.
    try:
        try:
            frame = _parse_csv(data, encoding, delimiter, header_index + 1, width + 1, limits)
        except pd.errors.ParserError:
            widest = _widest_row(data, encoding, delimiter)
            if widest > limits.max_columns + 1:
                raise too_many_columns(widest, limits, "a row of the file") from None
            frame = _parse_csv(data, encoding, delimiter, header_index + 1, max(widest, width + 1), limits)
    except pd.errors.ParserError as exc:
        raise ValidationError(
            f"the CSV could not be read with the delimiter {delimiter!r}: {exc}; check the quotes"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the CSV is not valid {encoding} text: save it as UTF-8") from exc
    check_row_count(len(frame), limits)
    header_row = header_index + 1
    frame, wide_rows = _align_to_header(frame, max(width, 1), header_row + 1)
    frame = _drop_empty_unnamed_columns(frame, raw_headers)
    headers = unique_headers(raw_headers[: len(frame.columns)])
    frame.columns = pd.Index(headers)
    frame = frame.astype(str)
    messages = bound_cells(frame, header_row + 1, limits)
    for row, notes in wide_rows.items():
        messages.setdefault(row, []).extend(notes)
    return RawTable(
        headers=headers,
        frame=clean_frame(frame, CSV_NEUTRALISED, CSV_UNDO),
        first_row=header_row + 1,
        header_row=header_row,
        encoding=encoding,
        delimiter=delimiter,
        row_messages=messages,
    )


def _drop_empty_unnamed_columns(frame: pd.DataFrame, raw_headers: list[Any]) -> pd.DataFrame:
    # A trailing delimiter on every line makes an empty, nameless last column: drop it.
    keep = len(frame.columns)
    while keep > 1 and not str(raw_headers[keep - 1]).strip():
        if frame.iloc[:, keep - 1].astype(bool).any():
            break
        keep -= 1
    return frame.iloc[:, :keep] if keep < len(frame.columns) else frame


def read_table(
    data: bytes, file_name: str, *, limits: ReadLimits | None = None, sheet: str | None = None
) -> RawTable:
    """Read an uploaded CSV or XLSX as text, enforcing the size, row and safety limits."""
    limits = limits or ReadLimits()
    if len(data) > limits.max_bytes:
        raise ValidationError(
            f"'{file_name}' is {len(data) / 1e6:,.1f} MB, more than the "
            f"{limits.max_bytes / 1e6:,.0f} MB allowed; split it into smaller files"
        )
    if not data:
        raise ValidationError(f"'{file_name}' is empty")
    if file_kind(file_name, data) == "xlsx":
        return read_xlsx_table(data, limits, sheet)
    return read_csv_table(data, limits)
