"""Download buttons for a table as CSV and XLSX, through the injection-safe export."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from core.export import dataframe_to_csv_bytes, dataframe_to_xlsx_bytes

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def show(frame: pd.DataFrame, file_stem: str, *, sheet_name: str, key: str) -> None:
    """Two buttons; each file is built only when its button is clicked."""
    csv_column, xlsx_column = st.columns(2)
    csv_column.download_button("Download CSV", partial(dataframe_to_csv_bytes, frame),
                               f"{file_stem}.csv", mime="text/csv", key=f"{key}_csv")
    xlsx_column.download_button(
        "Download XLSX", partial(dataframe_to_xlsx_bytes, frame, sheet_name=sheet_name),
        f"{file_stem}.xlsx", mime=XLSX_MIME, key=f"{key}_xlsx")
