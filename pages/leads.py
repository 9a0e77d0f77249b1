"""Leads: the upload wizard (file, mapping, preview, import, summary) and the lead table."""

from __future__ import annotations

import streamlit as st

from core.permissions import Permission
from pages.common import require_page
from pages.lead_sections import table, wizard

actor = require_page(Permission.manage_leads)
st.title("Leads")
import_tab, table_tab = st.tabs(["Import", "Lead table"])
with import_tab:
    wizard.show(actor)
with table_tab:
    table.show(actor)
