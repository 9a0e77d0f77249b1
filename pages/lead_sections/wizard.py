"""Leads page, the import wizard: file, column mapping, preview, import with progress, summary."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from core.export import dataframe_to_csv_bytes
from core.leads.importer import (
    DuplicatePolicy,
    import_table,
    load_table,
    preview_rows,
    require_lead_rows,
    suggest_for_table,
    tenant_country,
)
from core.leads.mapping import TARGET_LABELS, ColumnSuggestion, MappingSuggestion, header_signature
from core.leads.places import phone_countries
from core.leads.queries import get_import, rejects_frame, warnings_frame
from core.leads.readers import RawTable
from core.permissions import Actor
from core.text import plural, sentence
from pages.common import get_db, md, run_action

WIZARD = "leads_wizard"
POLICY_LABELS = {
    DuplicatePolicy.skip.value: "Skip: leave existing leads as they are",
    DuplicatePolicy.fill.value: "Fill: complete existing leads' empty fields",
    DuplicatePolicy.overwrite.value: "Overwrite: replace existing leads' fields",
}


@st.cache_data(show_spinner="Reading the file…", max_entries=4)
def read_upload(
    tenant_id: int, sha256: str, file_name: str, sheet: str | None, _actor: Actor, _data: bytes
) -> RawTable:
    """The upload read once per (tenant, file, sheet), not on every rerun."""
    return load_table(get_db(), _actor, _data, file_name, sheet)


@st.cache_data(show_spinner="Reading the columns…", max_entries=4)
def suggestion_for(
    tenant_id: int, sha256: str, sheet: str | None, _actor: Actor, _table: RawTable
) -> MappingSuggestion:
    """The mapping suggestion for the upload, worked out once per (tenant, file, sheet)."""
    return suggest_for_table(get_db(), _actor, _table)


def wizard() -> dict[str, Any]:
    return st.session_state.setdefault(WIZARD, {"step": "upload"})


def show_upload(key: str) -> tuple[str, bytes] | None:
    """The file picker; returns (name, bytes) of the chosen file."""
    uploaded = st.file_uploader("Lead file (CSV or XLSX)", type=["csv", "tsv", "txt", "xlsx"], key=key)
    return (uploaded.name, uploaded.getvalue()) if uploaded is not None else None


def _why(column: ColumnSuggestion) -> str:
    """The suggestion for a column in words: its field, how sure, and the evidence."""
    sure = f" ({round(column.confidence * 100)}% sure)" if column.confidence is not None else ""
    return f"Suggested: {TARGET_LABELS[column.target]}{sure}. {md(sentence(column.evidence))}"


def show_mapping(
    key: str, table: RawTable, initial: dict[str, str], suggestion: MappingSuggestion
) -> dict[str, str]:
    """One selectbox per column: which lead field it fills, under the suggestion and its evidence.
    Returns header -> field."""
    options = list(TARGET_LABELS)
    mapping: dict[str, str] = {}
    sample = table.frame.head(3)
    suggested = {c.header: c for c in suggestion.columns}
    for index, header in enumerate(table.headers):
        left, right = st.columns([2, 3])
        examples = ", ".join(v for v in sample[header].tolist() if v)[:80]
        # Headers and cells come from the uploaded file: escaped, so they show as written.
        left.markdown(f"**{md(header)}**  \n{md(examples) or '(empty)'}")
        mapping[header] = right.selectbox(
            f"Field for {md(header)}", options, index=options.index(initial.get(header, "custom")),
            format_func=TARGET_LABELS.__getitem__, key=f"{key}_{index}", label_visibility="collapsed",
        )
        if header in suggested:
            right.caption(_why(suggested[header]))
    return mapping


def show_left_out(suggestion: MappingSuggestion) -> None:
    """The columns the suggestion leaves out, each with the reason."""
    left_out = suggestion.left_out
    if not left_out:
        return
    lines = "\n".join(f"- **{md(c.header)}**: {md(sentence(c.left_out))}" for c in left_out)
    st.warning(f"{plural(len(left_out), 'column')} left out unless you choose a field for "
               f"{'it' if len(left_out) == 1 else 'them'}:\n{lines}")


def _country_label(code: str) -> str:
    return f"{phone_countries().get(code, code)} ({code})"


def show_phone_country(key: str, default: str) -> str:
    """The country the file's national phone numbers are in; numbers with a country code need none."""
    options = [default, *(code for code in phone_countries() if code != default)]
    return st.selectbox(
        "Phone numbers without a country code are from", options, key=key, format_func=_country_label,
        help="A number is read in its row's country only where that is unambiguous; a number "
             "that two countries read differently is left out with a warning, never guessed.",
    )


def show_policy(key: str) -> str:
    return st.radio("When a row matches an existing lead", list(POLICY_LABELS),
                    format_func=POLICY_LABELS.__getitem__, key=key)


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


def _uploaded_table(actor: Actor, state: dict[str, Any]) -> RawTable | None:
    """The wizard's file, read (once: see read_upload) at the sheet chosen."""
    return run_action(read_upload, actor.tenant_id, state["sha256"], state["file_name"],
                      state["sheet"], actor, state["data"])


def mapping_step(actor: Actor, state: dict[str, Any]) -> None:
    table = _uploaded_table(actor, state)
    if table is None:
        return
    if table.sheets and len(table.sheets) > 1:
        sheet = st.selectbox("Sheet", table.sheets, key="leads_sheet",
                             index=table.sheets.index(table.sheet or table.sheets[0]))
        if sheet != table.sheet:
            state["sheet"] = sheet
            state.pop("mapping", None)
            st.rerun()
    # After the sheet picker: another sheet of the workbook may hold the leads.
    if run_action(require_lead_rows, table, state["file_name"]) is None:
        return
    st.caption(f"{md(state['file_name'])}: {plural(table.row_count, 'row')}, "
               f"header on row {table.header_row}")
    suggestion = run_action(suggestion_for, actor.tenant_id, state["sha256"], state["sheet"], actor, table)
    if suggestion is None:
        return
    if suggestion.saved:
        st.success("Using the mapping saved for a file with these columns.")
    show_left_out(suggestion)
    # Keys per set of headers: another sheet or file must not inherit this one's choices.
    mapping = show_mapping(f"leads_map_{header_signature(table.headers)[:12]}", table,
                           state.get("mapping") or suggestion.mapping, suggestion)
    policy = show_policy("leads_policy")
    tags = st.text_input("Tags for every lead of this file (comma-separated)", key="leads_tags")
    if st.button("Preview", type="primary", key="leads_preview"):
        state.update(step="preview", mapping=mapping, policy=policy, tags=tags)
        st.rerun()


def preview_step(actor: Actor, state: dict[str, Any]) -> None:
    table = _uploaded_table(actor, state)
    if table is None:
        return
    default = run_action(tenant_country, get_db(), actor)
    if default is None:
        return
    phone_country = show_phone_country("leads_phone_country", default)
    rows = run_action(preview_rows, get_db(), actor, table, state["mapping"], phone_country=phone_country)
    back, go = st.columns(2)
    if back.button("Back to the mapping", key="leads_back"):
        state["step"] = "mapping"
        st.rerun()
    if rows is None:
        return
    frame = pd.DataFrame([{"row": r.row, "status": r.status, "problem": r.message, **r.values} for r in rows])
    st.container(key="leads_preview_rows").dataframe(frame, hide_index=True)
    rejected = sum(1 for r in rows if r.status == "rejected")
    warned = sum(1 for r in rows if r.status == "warning")
    st.caption(f"The first {plural(len(rows), 'row')}: {rejected:,} would be rejected, "
               f"{warned:,} imported with a warning.")
    if go.button(f"Import {plural(table.row_count, 'row')}", type="primary", key="leads_import"):
        bar = st.progress(0.0, text="Starting the import…")
        summary = run_action(
            import_table, get_db(), actor, table, file_name=state["file_name"],
            sha256=state["sha256"], mapping=state["mapping"], on_duplicate=state["policy"],
            tags=[state["tags"]] if state["tags"] else [], phone_country=phone_country,
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
        st.columns(6),
        [("Rows", "rows"), ("Imported", "imported"), ("Updated", "updated"),
         ("Duplicates", "duplicates"), ("Rejected", "rejected"), ("With warnings", "with_warnings")],
        strict=True,
    ):
        column.metric(label, f"{counts.get(name, 0):,}")
    if counts["rejected"] or counts.get("with_warnings"):
        found = run_action(get_import, get_db(), actor, counts["import_id"])
        if found is not None:
            show_report(found.id, rejects_frame(found.rejects), warnings_frame(found.warnings))
    if st.button("Import another file", key="leads_again"):
        state.clear()
        state["step"] = "upload"
        st.rerun()


def show_report(import_id: int, rejects: pd.DataFrame, warnings: pd.DataFrame) -> None:
    """The rejected rows and the warnings on imported rows, apart, each downloadable."""
    for frame, title, what, name in (
        (rejects, "Rejected rows (not imported)", "the rejected rows", "rejects"),
        (warnings, "Imported with warnings", "the warnings", "warnings"),
    ):
        if len(frame):
            st.subheader(title)
            st.container(key=f"leads_{name}_table").dataframe(frame.head(50), hide_index=True)
            st.download_button(f"Download {what} (CSV)", dataframe_to_csv_bytes(frame),
                               file_name=f"{name}-import-{import_id}.csv", mime="text/csv",
                               key=f"leads_{name}_download")


def show(actor: Actor) -> None:
    """The wizard's current step, and a way back to the start while a file is open."""
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
