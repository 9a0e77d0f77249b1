"""Reading lead spreadsheets as text: CSV in any common encoding and delimiter, XLSX safely.

Every cell comes back as a string exactly as the person sees it: no `0044...` turned into
`44...`, no phone turned into `4.15555e+09`, formulas as their cached values. A file wider than
the column cap is refused before its rows are parsed (a CSV by its header, an XLSX at the first
row that is too wide), so a 16,384-column sheet costs a second, not minutes. Every cell is
bounded: control characters (a NUL byte, which PostgreSQL cannot store, and the other C0 controls
but tab, CR and LF) are removed and a cell longer than the cell cap is cut, each with a message
for its row, never a refusal of the file. An XLSX is a zip
of XML, so before openpyxl parses it its declared sizes and compression ratio are checked
(Python's zipfile never inflates an entry past its declared size, so the check bounds memory),
and openpyxl must be parsing through defusedxml, which refuses entity-expansion attacks.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

import pandas as pd

from core.config import ConfigError, Settings
from core.errors import ValidationError
from core.export import CSV_NEUTRALISED, CSV_UNDO, START_NEUTRALISED, START_UNDO
from core.leads.mapping import looks_like_header_row

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
XLSX_EXTENSIONS = (".xlsx",)
DELIMITERS = (",", ";", "\t", "|")
HEADER_SEARCH_ROWS = 30
SNIFF_BYTES = 64 * 1024
# An entry smaller than this may compress as well as it likes: tiny XML parts often do.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
MAX_ZIP_ENTRIES = 10_000
ENTITY_MESSAGE = "the XLSX workbook contains XML entity declarations, which are refused for safety"
_APOSTROPHE_TRIGGER = re.compile(r"'[=+\-@\t\r\n]")
# C0 control characters but tab, LF and CR: never meaningful in a lead's data, and NUL cannot
# even be stored by PostgreSQL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x19\x1b-\x1f]")
# More control bytes than this share of a sample is a binary file, not text with a stray NUL.
BINARY_CONTROL_SHARE = 0.05
_ZEROS_FORMAT = re.compile(r"^0+$")
# A header names a custom field and a mapping entry: longer than this is cut.
MAX_HEADER_CHARS = 200


@dataclass(frozen=True)
class ReadLimits:
    """How big a file may be, so one upload cannot exhaust the server."""

    max_bytes: int = 50 * 1024 * 1024
    max_rows: int = 500_000
    max_uncompressed_bytes: int = 500 * 1024 * 1024
    max_compression_ratio: float = 100.0
    max_columns: int = 200
    max_cell_chars: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadLimits:
        return cls(
            max_bytes=settings.import_max_bytes,
            max_rows=settings.import_max_rows,
            max_uncompressed_bytes=settings.import_max_uncompressed_bytes,
            max_compression_ratio=settings.import_max_compression_ratio,
            max_columns=settings.import_max_columns,
            max_cell_chars=settings.import_max_cell_chars,
        )


@dataclass
class RawTable:
    """A spreadsheet read as text: unique headers, one string per cell, and where rows sit."""

    headers: list[str]
    frame: pd.DataFrame  # columns == headers, every cell a str ("" when empty)
    first_row: int  # the row number of the frame's first row as the spreadsheet shows it
    header_row: int
    sheets: list[str] = field(default_factory=list)
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    # Spreadsheet row number -> what reading changed in that row's cells (control characters
    # removed, a long cell cut): warnings for the row, not reasons to refuse it.
    row_messages: dict[int, list[str]] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return len(self.frame)

    def row_numbers(self, start: int = 0, stop: int | None = None) -> range:
        """The spreadsheet row numbers of frame rows start..stop."""
        stop = self.row_count if stop is None else min(stop, self.row_count)
        return range(self.first_row + start, self.first_row + max(stop, start))


def verify_xml_protection() -> None:
    """Raise ConfigError unless openpyxl parses XML through defusedxml (entity-expansion safe)."""
    try:
        import defusedxml  # noqa: F401
        from openpyxl.xml import DEFUSEDXML
    except ImportError as exc:
        raise ConfigError(
            "defusedxml is not installed, so XLSX uploads are not protected against XML entity "
            "expansion; install it: pip install -r requirements.txt"
        ) from exc
    if not DEFUSEDXML:
        raise ConfigError(
            "openpyxl is not using defusedxml (is OPENPYXL_DEFUSEDXML set to False?), so XLSX "
            "uploads are not protected against XML entity expansion; unset it and restart"
        )


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


def find_header_row(rows: list[list[str]]) -> int:
    """The index of the header row among the first rows (title rows may stand above it)."""
    candidates = rows[:HEADER_SEARCH_ROWS]
    widths = [sum(1 for c in r if str(c).strip()) for r in candidates]
    if not widths or max(widths) == 0:
        raise ValidationError("the file has no header row: it looks empty")
    for index, row in enumerate(candidates):
        if looks_like_header_row(row):
            return index
    widest = max(widths)
    for index, width in enumerate(widths):
        if width >= max(2, widest // 2 + 1) or width == widest:
            return index
    return 0


def unique_headers(raw: list[Any]) -> list[str]:
    """Header names made unique and non-empty: 'Phone', 'Phone (2)', 'Column 5'."""
    headers: list[str] = []
    seen: dict[str, int] = {}
    for position, value in enumerate(raw, start=1):
        name = " ".join(CONTROL_CHARACTERS.sub("", str(value or "")).split()) or f"Column {position}"
        if len(name) > MAX_HEADER_CHARS:
            name = name[: MAX_HEADER_CHARS - 1].rstrip() + "…"
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        headers.append(name if count == 1 else f"{name} ({count})")
    return headers


def _clean_frame(frame: pd.DataFrame, neutralised: re.Pattern[str], undo: str) -> pd.DataFrame:
    # Cells written by Leadflow's own export carry apostrophes against formula injection. Only a
    # column with an apostrophe before a trigger somewhere is rewritten, so a column of names
    # like O'Brien costs one vectorised search.
    for column in frame.columns:
        values = frame[column]
        if values.str.contains(_APOSTROPHE_TRIGGER.pattern, regex=True).any():
            frame[column] = values.str.replace(neutralised, undo, regex=True)
    return frame


def _bound_cells(frame: pd.DataFrame, first_row: int, limits: ReadLimits) -> dict[int, list[str]]:
    """Remove control characters and cut over-long cells in place; the messages per row.

    Each column is checked with two vectorised passes; only a column with a hit (nearly never)
    is looked at cell by cell.
    """
    messages: dict[int, list[str]] = {}
    cap = limits.max_cell_chars
    for position, header in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if column.empty:
            continue
        has_controls = bool(column.str.contains(CONTROL_CHARACTERS.pattern, regex=True).any())
        if not has_controls and column.str.len().max() <= cap:
            continue
        values: list[str] = column.tolist()
        for index, value in enumerate(values):
            notes = []
            if has_controls:
                value, removed = CONTROL_CHARACTERS.subn("", value)
                if removed:
                    plural = "character" if removed == 1 else "characters"
                    notes.append(
                        f"column '{header}': removed {removed:,} control {plural} (such as a NUL byte)"
                    )
            if len(value) > cap:
                notes.append(
                    f"column '{header}' held {len(value):,} characters: only the first {cap:,} were read"
                )
                value = value[:cap]
            if notes:
                values[index] = value
                messages.setdefault(first_row + index, []).extend(notes)
        frame.iloc[:, position] = values
    return messages


def _too_many_columns(count: int, limits: ReadLimits, where: str = "the file") -> ValidationError:
    return ValidationError(
        f"{where} has {count:,} columns, more than the {limits.max_columns:,} one import takes; "
        "delete the columns you do not need (or copy the ones to import into a new sheet) and "
        "upload it again"
    )


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
        raise _too_many_columns(width, limits)
    # Rows are read one field wider than the header, so a trailing delimiter never shifts a row
    # (pandas would take the first column as an index); a row wider still is read in full to be reported.
    try:
        try:
            frame = _parse_csv(data, encoding, delimiter, header_index + 1, width + 1, limits)
        except pd.errors.ParserError:
            widest = _widest_row(data, encoding, delimiter)
            if widest > limits.max_columns + 1:
                raise _too_many_columns(widest, limits, "a row of the file") from None
            frame = _parse_csv(data, encoding, delimiter, header_index + 1, max(widest, width + 1), limits)
    except pd.errors.ParserError as exc:
        raise ValidationError(
            f"the CSV could not be read with the delimiter {delimiter!r}: {exc}; check the quotes"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the CSV is not valid {encoding} text: save it as UTF-8") from exc
    _check_row_count(len(frame), limits)
    header_row = header_index + 1
    frame, wide_rows = _align_to_header(frame, max(width, 1), header_row + 1)
    frame = _drop_empty_unnamed_columns(frame, raw_headers)
    headers = unique_headers(raw_headers[: len(frame.columns)])
    frame.columns = pd.Index(headers)
    frame = frame.astype(str)
    messages = _bound_cells(frame, header_row + 1, limits)
    for row, notes in wide_rows.items():
        messages.setdefault(row, []).extend(notes)
    return RawTable(
        headers=headers,
        frame=_clean_frame(frame, CSV_NEUTRALISED, CSV_UNDO),
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


def _check_row_count(rows: int, limits: ReadLimits) -> None:
    if rows > limits.max_rows:
        raise ValidationError(
            f"the file has more than {limits.max_rows:,} rows, the most one import takes; "
            "split it into smaller files"
        )


def check_xlsx_archive(data: bytes, limits: ReadLimits) -> None:
    """Refuse a zip bomb or a zip that is not a workbook, from the zip directory alone."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValidationError("the file is not a valid XLSX workbook (a damaged zip)") from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise ValidationError("the XLSX workbook has too many parts to be a spreadsheet")
        names = {e.filename for e in entries}
        if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
            raise ValidationError("the file is a zip but not an XLSX workbook")
        total = sum(e.file_size for e in entries)
        if total > limits.max_uncompressed_bytes:
            raise ValidationError(
                f"the XLSX workbook unpacks to {total / 1e6:,.0f} MB, more than the "
                f"{limits.max_uncompressed_bytes / 1e6:,.0f} MB allowed; save it as CSV instead"
            )
        for entry in entries:
            if entry.file_size < RATIO_CHECK_MIN_BYTES:
                continue
            ratio = entry.file_size / max(entry.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise ValidationError(
                    f"the XLSX workbook is compressed {ratio:,.0f} to 1, more than the "
                    f"{limits.max_compression_ratio:,.0f} to 1 a spreadsheet plausibly needs; "
                    "it is refused as a possible zip bomb"
                )


def xlsx_cell_text(value: Any, number_format: str | None = None) -> str:
    """A cell as the text a person sees: whole numbers without '.0', leading zeros kept."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    elif isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    elif isinstance(value, (date, time)):
        return value.isoformat()
    else:
        return str(value)
    # A number formatted "00000000000" shows its leading zeros: keep them (phone numbers).
    if number_format and _ZEROS_FORMAT.match(number_format) and text.isdigit():
        return text.zfill(len(number_format))
    return text


def list_sheets(data: bytes, limits: ReadLimits | None = None) -> list[str]:
    workbook = _open_workbook(data, limits or ReadLimits())
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def _open_workbook(data: bytes, limits: ReadLimits) -> Any:
    import openpyxl
    from defusedxml import DefusedXmlException

    verify_xml_protection()
    check_xlsx_archive(data, limits)
    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        if _caused_by(exc, DefusedXmlException):
            raise ValidationError(ENTITY_MESSAGE) from exc
        raise ValidationError(f"the XLSX workbook could not be read: {exc}") from exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    # openpyxl wraps parser errors in a ValueError; look down the chain.
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
    return False


def read_xlsx_table(data: bytes, limits: ReadLimits, sheet: str | None = None) -> RawTable:
    from defusedxml import DefusedXmlException

    workbook = _open_workbook(data, limits)
    try:
        sheets = list(workbook.sheetnames)
        if sheet is not None and sheet not in sheets:
            raise ValidationError(f"the workbook has no sheet '{sheet}'; it has: {', '.join(sheets)}")
        name = sheet or sheets[0]
        try:
            rows = _sheet_rows(workbook[name], limits)
        except (DefusedXmlException, ValueError) as exc:
            if _caused_by(exc, DefusedXmlException):
                raise ValidationError(ENTITY_MESSAGE) from exc
            raise ValidationError(f"the sheet '{name}' could not be read: {exc}") from exc
    finally:
        workbook.close()
    if not rows:
        raise ValidationError(f"the sheet '{name}' is empty")
    header_index = find_header_row(rows)
    header_cells = rows[header_index]
    while header_cells and not header_cells[-1].strip():
        header_cells = header_cells[:-1]
    headers = unique_headers(header_cells)
    width = len(headers)
    body = [r[:width] + [""] * (width - len(r)) for r in rows[header_index + 1 :]]
    _check_row_count(len(body), limits)
    frame = pd.DataFrame(body, columns=headers, dtype=str)
    messages = _bound_cells(frame, header_index + 2, limits)
    return RawTable(
        headers=headers,
        frame=_clean_frame(frame, START_NEUTRALISED, START_UNDO),
        first_row=header_index + 2,
        header_row=header_index + 1,
        sheets=sheets,
        sheet=name,
        row_messages=messages,
    )


def _filled_width(row: tuple[Any, ...]) -> int:
    """The position of the row's last cell that holds a value (0 for an empty row)."""
    width = len(row)
    while width and (row[width - 1].value is None or row[width - 1].value == ""):
        width -= 1
    return width


def _sheet_rows(worksheet: Any, limits: ReadLimits) -> list[list[str]]:
    rows: list[list[str]] = []
    # The header may sit a few rows down, so allow for those above the row limit.
    cap = limits.max_rows + HEADER_SEARCH_ROWS + 1
    # The declared <dimension> would pad every row to its width (A1:XFD1 pads to 16,384 cells):
    # read each row as far as its own cells go instead.
    worksheet.reset_dimensions()
    for number, row in enumerate(worksheet.iter_rows(), start=1):
        width = _filled_width(row)
        if width > limits.max_columns:
            where = (
                f"row {number} of the sheet '{worksheet.title}'"
                if rows
                else (f"the sheet '{worksheet.title}'")
            )
            raise _too_many_columns(width, limits, where)
        rows.append(
            [
                xlsx_cell_text(c.value, c.number_format if isinstance(c.value, (int, float)) else None)
                for c in row[:width]
            ]
        )
        if len(rows) > cap:
            _check_row_count(len(rows), limits)
    while rows and not any(rows[-1]):
        rows.pop()
    return rows


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
