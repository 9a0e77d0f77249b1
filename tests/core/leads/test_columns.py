"""The lead's one column list: both its views name columns the leads table has."""

from __future__ import annotations

from sqlalchemy import inspect

from core.leads.columns import IMPORTED_COLUMNS, LEAD_DATA_COLUMNS, RUN_COLUMNS
from core.models import Lead


def test_the_import_and_the_run_read_and_write_columns_of_the_leads_table() -> None:
    columns = {c.key for c in inspect(Lead).column_attrs}
    assert set(IMPORTED_COLUMNS) <= columns
    assert set(RUN_COLUMNS) <= columns


def test_both_views_carry_all_of_the_lead_data_in_one_order() -> None:
    assert IMPORTED_COLUMNS[: len(LEAD_DATA_COLUMNS)] == LEAD_DATA_COLUMNS
    assert RUN_COLUMNS[1 : 1 + len(LEAD_DATA_COLUMNS)] == LEAD_DATA_COLUMNS
    assert len(set(IMPORTED_COLUMNS)) == len(IMPORTED_COLUMNS)
