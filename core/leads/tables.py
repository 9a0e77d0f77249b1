"""What a spreadsheet reader returns and the rules every reader follows: the size and safety
limits, where the header row is, unique header names, and every cell bounded and made plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.config import Settings
from core.errors import ValidationError
from core.leads.mapping import looks_like_header_row

HEADER_SEARCH_ROWS = 30
_APOSTROPHE_TRIGGER = re.compile(r"'[=+\-@\t\r\n]")
# C0 control characters but tab, LF and CR: never meaningful in a lead's data, and NUL cannot
# even be stored by PostgreSQL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
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


def clean_frame(frame: pd.DataFrame, neutralised: re.Pattern[str], undo: str) -> pd.DataFrame:
    # Cells written by Leadflow's own export carry apostrophes against formula injection. Only a
    # column with an apostrophe before a trigger somewhere is rewritten, so a column of names
    # like O'Brien costs one vectorised search.
    for column in frame.columns:
        values = frame[column]
        if values.str.contains(_APOSTROPHE_TRIGGER.pattern, regex=True).any():
            frame[column] = values.str.replace(neutralised, undo, regex=True)
    return frame


def bound_cells(frame: pd.DataFrame, first_row: int, limits: ReadLimits) -> dict[int, list[str]]:
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


def too_many_columns(count: int, limits: ReadLimits, where: str = "the file") -> ValidationError:
    return ValidationError(
        f"{where} has {count:,} columns, more than the {limits.max_columns:,} one import takes; "
        "delete the columns you do not need (or copy the ones to import into a new sheet) and "
        "upload it again"
    )


def check_row_count(rows: int, limits: ReadLimits) -> None:
    if rows > limits.max_rows:
        raise ValidationError(
            f"the file has more than {limits.max_rows:,} rows, the most one import takes; "
            "split it into smaller files"
        )
