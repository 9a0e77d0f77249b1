"""Reading an XLSX workbook safely, every cell as the text the person sees.

An XLSX is a zip of XML, so before openpyxl parses it its declared sizes and compression ratio are
checked (Python's zipfile never inflates an entry past its declared size, so the check bounds
memory), and openpyxl must be parsing through defusedxml, which refuses entity-expansion attacks.
A sheet wider than the column cap is refused at the first row that is too wide.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime, time
from typing import Any

import pandas as pd

from core.config import ConfigError
from core.errors import ValidationError
from core.export import START_NEUTRALISED, START_UNDO
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

# An entry smaller than this may compress as well as it likes: tiny XML parts often do.
RATIO_CHECK_MIN_BYTES = 1024 * 1024
MAX_ZIP_ENTRIES = 10_000
ENTITY_MESSAGE = "the XLSX workbook contains XML entity declarations, which are refused for safety"
_ZEROS_FORMAT = re.compile(r"^0+$")


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
    check_row_count(len(body), limits)
    frame = pd.DataFrame(body, columns=headers, dtype=str)
    messages = bound_cells(frame, header_index + 2, limits)
    return RawTable(
        headers=headers,
        frame=clean_frame(frame, START_NEUTRALISED, START_UNDO),
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
            raise too_many_columns(width, limits, where)
        rows.append(
            [
                xlsx_cell_text(c.value, c.number_format if isinstance(c.value, (int, float)) else None)
                for c in row[:width]
            ]
        )
        if len(rows) > cap:
            check_row_count(len(rows), limits)
    while rows and not any(rows[-1]):
        rows.pop()
    return rows
