"""Leads: the upload wizard (file, mapping, preview, import, summary) and the lead table."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from core.export import dataframe_to_csv_bytes
from core.leads.importer import DuplicatePolicy, import_table, load_table, preview_rows
from core.leads.mapping import TARGET_LABELS, header_signature, mapping_for
from core.leads.queries import (
    LeadFilter,
    add_tags,
    export_leads_bytes,
    get_import,
    list_imports,
    list_leads,
    list_tags,
    opt_out,
    rejects_frame,
)
from core.leads.readers import RawTable
from core.permissions import Actor, Permission
from pages.common import get_db, require_page, run_action

actor = require_page(Permission.manage_leads)

WIZARD = "leads_wizard"
POLICY_LABELS = {
    DuplicatePolicy.skip.value: "Skip: leave existing leads as they are",
    DuplicatePolicy.fill.value: "Fill: complete existing leads' empty fields",
    DuplicatePolicy.overwrite.value: "Overwrite: replace existing leads' fields",
}
OPT_OUT_LABELS = {"all": "All", "no": "Not opted out", "yes": "Opted out"}


@st.cache_data(show_spinner="Reading the file…", max_entries=4)
def read_upload(
    tenant_id: int, sha256: str, file_name: str, sheet: str | None, _actor: Actor, _data: bytes
) -> RawTable:
    """The upload read once per (tenant, file, sheet), not on every rerun."""
    return load_table(get_db(), _actor, _data, file_name, sheet)


def wizard() -> dict[str, Any]:
    return st.session_state.setdefault(WIZARD, {"step": "upload"})


def show_upload(key: str) -> tuple[str, bytes] | None:
    """The file picker; returns (name, bytes) of the chosen file."""
    uploaded = st.file_uploader("Lead file (CSV or XLSX)", type=["csv", "tsv", "txt", "xlsx"], key=key)
    return (uploaded.name, uploaded.getvalue()) if uploaded is not None else None


def show_mapping(key: str, table: RawTable, initial: dict[str, str]) -> dict[str, str]:
    """One selectbox per column: which lead field it fills. Returns header -> field."""
    options = list(TARGET_LABELS)
    mapping: dict[str, str] = {}
    sample = table.frame.head(3)
    for index, header in enumerate(table.headers):
        left, right = st.columns([2, 3])
        examples = ", ".join(v for v in sample[header].tolist() if v)[:80]
        left.markdown(f"**{header}**  \n{examples or '(empty)'}")
        mapping[header] = right.selectbox(
            f"Field for {header}", options, index=options.index(initial.get(header, "custom")),
            format_func=TARGET_LABELS.__getitem__, key=f"{key}_{index}", label_visibility="collapsed",
        )
    return mapping


def show_policy(key: str) -> str:
    return st.radio("When a row matches an existing lead", list(POLICY_LABELS),
                    format_func=POLICY_LABELS.__getitem__, key=key)


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


def upload_step(actor: Actor, state: dict[str, Any]) -> None:
    chosen = show_upload("leads_upload")
    if chosen is None:
        st.info("Upload a CSV or XLSX of leads: any encoding and delimiter; the header row may sit "
                "below title rows.")
        return
    name, data = chosen
    sha256 = hashlib.sha256(data).hexdigest()
    if state.get("sha256") != sha256:
        state.clear()
        state.update(step="mapping", file_name=name, sha256=sha256, data=data, sheet=None)
        st.rerun()


def mapping_step(actor: Actor, state: dict[str, Any]) -> None:
    table = run_action(read_upload, actor.tenant_id, state["sha256"], state["file_name"],
                       state["sheet"], actor, state["data"])
    if table is None:
        return
    if table.sheets and len(table.sheets) > 1:
        sheet = st.selectbox("Sheet", table.sheets, key="leads_sheet",
                             index=table.sheets.index(table.sheet or table.sheets[0]))
        if sheet != table.sheet:
            state["sheet"] = sheet
            state.pop("mapping", None)
            st.rerun()
    st.caption(f"{state['file_name']}: {table.row_count:,} rows, header on row {table.header_row}")
    initial, saved = mapping_for(get_db(), actor, table.headers)
    if saved:
        st.success("Using the mapping saved for a file with these columns.")
    # Keys per set of headers: another sheet or file must not inherit this one's choices.
    mapping = show_mapping(f"leads_map_{header_signature(table.headers)[:12]}", table,
                           state.get("mapping") or initial)
    policy = show_policy("leads_policy")
    tags = st.text_input("Tags for every lead of this file (comma-separated)", key="leads_tags")
    if st.button("Preview", type="primary", key="leads_preview"):
        state.update(step="preview", mapping=mapping, policy=policy, tags=tags)
        st.rerun()


def preview_step(actor: Actor, state: dict[str, Any]) -> None:
    table = run_action(read_upload, actor.tenant_id, state["sha256"], state["file_name"],
                       state["sheet"], actor, state["data"])
    if table is None:
        return
    rows = run_action(preview_rows, get_db(), actor, table, state["mapping"])
    back, go = st.columns(2)
    if back.button("Back to the mapping", key="leads_back"):
        state["step"] = "mapping"
        st.rerun()
    if rows is None:
        return
    frame = pd.DataFrame([{"row": r.row, "status": r.status, "problem": r.message, **r.values} for r in rows])
    st.dataframe(frame, hide_index=True)
    rejected = sum(1 for r in rows if r.status == "rejected")
    st.caption(f"The first {len(rows)} rows: {rejected} would be rejected.")
    if go.button(f"Import {table.row_count:,} rows", type="primary", key="leads_import"):
        bar = st.progress(0.0, text="Starting the import…")
        summary = run_action(
            import_table, get_db(), actor, table, file_name=state["file_name"],
            sha256=state["sha256"], mapping=state["mapping"], on_duplicate=state["policy"],
            tags=[state["tags"]] if state["tags"] else [],
            progress=lambda fraction, text: _show_progress(bar, fraction, text),
        )
        if summary is not None:
            state.clear()
            state.update(step="done", summary=summary.counts())
            st.rerun()


def _show_progress(bar: Any, fraction: float, text: str) -> None:
    bar.progress(min(fraction, 1.0), text=text)


def summary_step(actor: Actor, state: dict[str, Any]) -> None:
    counts = state["summary"]
    st.success(f"Import #{counts['import_id']} finished.")
    for column, (label, name) in zip(
        st.columns(5),
        [("Rows", "rows"), ("Imported", "imported"), ("Updated", "updated"),
         ("Duplicates", "duplicates"), ("Rejected", "rejected")],
        strict=True,
    ):
        column.metric(label, f"{counts[name]:,}")
    if counts["rejected"]:
        found = run_action(get_import, get_db(), actor, counts["import_id"])
        if found is not None:
            rejects = rejects_frame(found.rejects)
            st.dataframe(rejects.head(50), hide_index=True)
            st.download_button("Download the rejected rows (CSV)", dataframe_to_csv_bytes(rejects),
                               file_name=f"rejects-import-{found.id}.csv", mime="text/csv",
                               key="leads_rejects_download")
    if st.button("Import another file", key="leads_again"):
        state.clear()
        state["step"] = "upload"
        st.rerun()


def lead_table(actor: Actor) -> None:
    db = get_db()
    where = show_filters("leads_filter", actor)
    page_number = st.number_input("Page", min_value=1, value=1, step=1, key="leads_page")
    page = run_action(list_leads, db, actor, where, page=int(page_number), page_size=50)
    if page is None:
        return
    st.caption(f"{page.total:,} leads · page {page.page} of {page.pages}")
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
            st.toast(f"{added} tags added")
            st.rerun()
    if opt_col.button("Opt out", key="leads_opt_out"):
        changed = run_action(opt_out, db, actor, chosen)
        if changed is not None:
            st.toast(f"{changed} leads opted out and suppressed")
            st.rerun()
    fmt = st.selectbox("Export format", ["csv", "xlsx"], key="leads_export_format")
    if st.button("Prepare the export of these leads", key="leads_export"):
        data = run_action(export_leads_bytes, db, actor, fmt, where)
        if data is not None:
            st.download_button(f"Download leads.{fmt}", data, file_name=f"leads.{fmt}",
                               key="leads_export_download")


st.title("Leads")
import_tab, table_tab = st.tabs(["Import", "Lead table"])
with import_tab:
    state = wizard()
    steps = {"upload": upload_step, "mapping": mapping_step, "preview": preview_step,
             "done": summary_step}
    restart = state["step"] in ("mapping", "preview") and st.button(
        "Start again with another file", key="leads_restart"
    )
    if restart:
        state.clear()
        state["step"] = "upload"
        st.rerun()
    steps[state["step"]](actor, state)
with table_tab:
    lead_table(actor)
