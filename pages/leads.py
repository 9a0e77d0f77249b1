"""Leads: the lead table (managers read it), the upload wizard (admins), and one lead's page at ?lead=<id>."""

from __future__ import annotations

import streamlit as st

from core.permissions import Permission
from pages.common import require_page
from pages.lead_sections import detail, table, wizard

actor = require_page(Permission.view_leads)
st.title("Leads")
lead_id = detail.lead_in_url()
if lead_id is not None:
    detail.show(actor, lead_id)
elif actor.can(Permission.manage_leads):
    import_tab, table_tab = st.tabs(["Import", "Lead table"])
    with import_tab:
        wizard.show(actor)
    with table_tab:
        table.show(actor)
else:
    table.show(actor)
