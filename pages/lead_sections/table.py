"""Leads page, the lead table: search and filters, paged in the database, tags, opt-out, export."""

from __future__ import annotations

import streamlit as st

from core.leads.queries import (
    LeadFilter,
    add_tags,
    export_leads_bytes,
    list_imports,
    list_leads,
    list_tags,
    opt_out,
)
from core.permissions import Actor
from core.text import plural
from pages.common import get_db, run_action

OPT_OUT_LABELS = {"all": "All", "no": "Not opted out", "yes": "Opted out"}


def _tag_label(tag: str) -> str:
    # A module-level function, not a lambda: session state must stay picklable.
    return tag or "Any tag"


def show_filters(key: str, actor: Actor) -> LeadFilter:
    """Search and filters of the lead table."""
    db = get_db()
    search_col, tag_col, import_col, opted_col = st.columns([3, 2, 3, 2])
    search = search_col.text_input("Search", key=f"{key}_search", placeholder="name, email, phone, company")
    tags = [""] + [t for t, _n in list_tags(db, actor)]
    tag = tag_col.selectbox("Tag", tags, key=f"{key}_tag", format_func=_tag_label)
    imports = {0: "Any import"} | {i.id: i.label for i in list_imports(db, actor)}
    import_id = import_col.selectbox("Import", list(imports), key=f"{key}_import",
                                     format_func=imports.__getitem__)
    opted = opted_col.selectbox("Opted out", list(OPT_OUT_LABELS), key=f"{key}_opted",
                                format_func=OPT_OUT_LABELS.__getitem__)
    return LeadFilter(search=search, tag=tag or None, import_id=import_id or None,
                      opted_out={"all": None, "yes": True, "no": False}[opted])


def show(actor: Actor) -> None:
    db = get_db()
    where = show_filters("leads_filter", actor)
    page_number = st.number_input("Page", min_value=1, value=1, step=1, key="leads_page")
    page = run_action(list_leads, db, actor, where, page=int(page_number), page_size=50)
    if page is None:
        return
    st.caption(f"{plural(page.total, 'lead')} · page {page.page} of {page.pages}")
    st.dataframe(page.rows, hide_index=True)
    labels = {int(r.id): f"#{r.id} {r.first_name or ''} {r.last_name or ''} {r.email or r.phone or ''}"
              for r in page.rows.itertuples()}
    chosen = st.multiselect("Leads on this page", list(labels), format_func=labels.__getitem__,
                            key="leads_selected")
    tag_col, action_col, opt_col = st.columns([3, 1, 1])
    new_tags = tag_col.text_input("Tags to add", key="leads_new_tags")
    if action_col.button("Add tags", key="leads_add_tags"):
        added = run_action(add_tags, db, actor, chosen, new_tags)
        if added is not None:
            st.toast(f"{plural(added, 'tag')} added")
            st.rerun()
    if opt_col.button("Opt out", key="leads_opt_out"):
        changed = run_action(opt_out, db, actor, chosen)
        if changed is not None:
            st.toast(f"{plural(changed, 'lead')} opted out and suppressed")
            st.rerun()
    fmt = st.selectbox("Export format", ["csv", "xlsx"], key="leads_export_format")
    if st.button("Prepare the export of these leads", key="leads_export"):
        data = run_action(export_leads_bytes, db, actor, fmt, where)
        if data is not None:
            st.download_button(f"Download leads.{fmt}", data, file_name=f"leads.{fmt}",
                               key="leads_export_download")
