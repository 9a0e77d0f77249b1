"""Leads page, the lead table: search and filters, paged in the database; a row opens the lead's
page. Admins also tag, opt out and export.

A bulk opt-out asks first, with the counts, and can be undone right after it.
"""

from __future__ import annotations

import streamlit as st

from core.leads.queries import (
    LeadFilter,
    add_tags,
    export_leads_bytes,
    list_imports,
    list_leads,
    list_tags,
    opt_out_leads,
    plan_opt_out,
    undo_opt_out,
)
from core.permissions import Actor, Permission
from core.text import plural
from pages.common import get_db, md, run_action
from pages.lead_sections.detail import ERASED_FLASH_KEY, open_lead

OPT_OUT_LABELS = {"all": "All", "no": "Not opted out", "yes": "Opted out"}
# The lead ids the opt-out confirmation asks about (not the live selection: what was asked is done).
PENDING_OPT_OUT_KEY = "leads_opt_out_pending"
# The last bulk opt-out, {"action_id", "leads", "suppressions"}, while its undo is offered.
DONE_OPT_OUT_KEY = "leads_opt_out_done"
FLASH_KEY = "leads_table_flash"


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
    if flash := st.session_state.pop(ERASED_FLASH_KEY, None):
        st.success(flash)
    st.caption(f"{plural(page.total, 'lead')} · page {page.page} of {page.pages} · "
               "select a row to open the lead")
    shown = st.dataframe(page.rows, hide_index=True, key="leads_table", on_select="rerun",
                         selection_mode="single-row")
    if shown.selection.rows:
        open_lead(int(page.rows["id"].iloc[shown.selection.rows[0]]))
    if not actor.can(Permission.manage_leads):
        return
    labels = {int(r.id): f"#{r.id} {r.first_name or ''} {r.last_name or ''} {r.email or r.phone or ''}"
              for r in page.rows.itertuples()}
    chosen = st.multiselect("Leads on this page", list(labels), format_func=labels.__getitem__,
                            key="leads_selected")
    tag_col, action_col, opt_col = st.columns([3, 1, 1])
    new_tags = tag_col.text_input("Tags to add", key="leads_new_tags")
    if action_col.button("Add tags", key="leads_add_tags"):
        added = run_action(add_tags, db, actor, chosen, new_tags)
        if added is not None:
            st.session_state.pop(DONE_OPT_OUT_KEY, None)  # the undo is offered right after, not later
            st.toast(f"{plural(added, 'tag')} added")
            st.rerun()
    if opt_col.button("Opt out", key="leads_opt_out"):
        plan = run_action(plan_opt_out, db, actor, chosen)
        if plan is not None:
            st.session_state[PENDING_OPT_OUT_KEY] = list(plan.lead_ids)
            st.session_state.pop(DONE_OPT_OUT_KEY, None)
    _confirm_opt_out(actor)
    _offer_undo(actor)
    fmt = st.selectbox("Export format", ["csv", "xlsx"], key="leads_export_format")
    if st.button("Prepare the export of these leads", key="leads_export"):
        data = run_action(export_leads_bytes, db, actor, fmt, where)
        if data is not None:
            st.download_button(f"Download leads.{fmt}", data, file_name=f"leads.{fmt}",
                               key="leads_export_download")


def _confirm_opt_out(actor: Actor) -> None:
    """Ask before a bulk opt-out, with what it will change; act only on the answer."""
    lead_ids = st.session_state.get(PENDING_OPT_OUT_KEY)
    if not lead_ids:
        return
    db = get_db()
    plan = run_action(plan_opt_out, db, actor, lead_ids)  # counted afresh: the figures stay true
    if plan is None:
        st.session_state.pop(PENDING_OPT_OUT_KEY, None)
        return
    names = ", ".join(md(name) for name in plan.names)
    if plan.leads > len(plan.names):
        names += f" and {plan.leads - len(plan.names):,} more"
    notes = []
    if plan.already_opted_out:
        verb = "is" if plan.already_opted_out == 1 else "are"
        notes.append(f"{plan.already_opted_out:,} of them {verb} opted out already.")
    if plan.already_suppressed:
        verb = "is" if plan.already_suppressed == 1 else "are"
        notes.append(f"{plan.already_suppressed:,} of the addresses {verb} suppressed already.")
    st.warning(
        f"**Opt out {plural(plan.leads, 'lead')} ({plural(plan.addresses, 'address')})?** {names}.  \n"
        "No campaign will message them again: their phones and emails go on the suppression list. "
        f"You can undo this right after. {' '.join(notes)}"
    )
    yes_col, no_col = st.columns([1, 1])
    if yes_col.button(f"Opt out {plural(plan.leads, 'lead')}", key="leads_opt_out_confirm", type="primary"):
        st.session_state.pop(PENDING_OPT_OUT_KEY, None)
        done = run_action(opt_out_leads, db, actor, lead_ids)
        if done is not None and not (done.leads or done.suppressions):
            st.session_state[FLASH_KEY] = "Nothing changed: these leads were opted out already."
            st.rerun()
        if done is not None:
            st.session_state[DONE_OPT_OUT_KEY] = {"action_id": done.action_id, "leads": done.leads,
                                                  "suppressions": done.suppressions}
            st.rerun()
    if no_col.button("Cancel", key="leads_opt_out_cancel"):
        st.session_state.pop(PENDING_OPT_OUT_KEY, None)
        st.rerun()


def _offer_undo(actor: Actor) -> None:
    """Right after a bulk opt-out: what it did, and a way to take exactly that back."""
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    done = st.session_state.get(DONE_OPT_OUT_KEY)
    if not done:
        return
    message_col, undo_col = st.columns([4, 1])
    message_col.success(
        f"{plural(done['leads'], 'lead')} opted out and {plural(done['suppressions'], 'address')} suppressed."
    )
    if undo_col.button("Undo", key="leads_opt_out_undo"):
        undone = run_action(undo_opt_out, get_db(), actor, done["action_id"])
        st.session_state.pop(DONE_OPT_OUT_KEY, None)
        if undone is not None:
            kept = (
                f" {plural(undone.kept, 'address')} stayed suppressed: the recipient asked for it since."
                if undone.kept
                else ""
            )
            st.session_state[FLASH_KEY] = (
                f"Undone: {plural(undone.leads, 'lead')} opted back in and "
                f"{plural(undone.suppressions, 'suppression')} removed.{kept}"
            )
            st.rerun()
