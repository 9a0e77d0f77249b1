"""One lead's page (?lead=<id>, so it can be shared): everything about the lead; edit and erase for admins."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.errors import LeadflowError
from core.leads.detail import EDITABLE_FIELDS, LeadDetail, LeadEditRefused, lead_detail, update_lead
from core.leads.erasure import erase_lead, name_matches, plan_erasure
from core.permissions import Actor, Permission
from core.reports import format_usd
from core.text import plural
from pages.common import get_db, md, run_action, show_error

LEAD_PARAM = "lead"
FLASH_KEY = "lead_page_flash"
# Shown on the lead table after an erasure: the lead's page is gone.
ERASED_FLASH_KEY = "leads_erased_flash"
CHANNEL_WORDS = {"sms": "SMS", "email": "Email"}
SUPPRESSION_WORDS = {
    "stop": "a STOP reply",
    "unsubscribe": "an unsubscribe",
    "bounce": "a bounce",
    "manual": "a do-not-contact entry added by hand",
    "erasure": "an erasure request",
}


def lead_in_url() -> str | None:
    """The lead asked for in the URL (?lead=123), as typed; None on the lead table."""
    return st.query_params.get(LEAD_PARAM)


def open_lead(lead_id: int) -> None:
    st.query_params[LEAD_PARAM] = str(lead_id)
    st.rerun()


def _close_lead() -> None:
    st.query_params.pop(LEAD_PARAM, None)


def _when(at: Any) -> str:
    return "" if at is None or pd.isna(at) else f"{at:%Y-%m-%d %H:%M} UTC"


def show(actor: Actor, raw_id: str) -> None:
    st.button("All leads", key="lead_back", icon=":material/arrow_back:", on_click=_close_lead)
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    if not raw_id.strip().isdigit():
        show_error(f"'{raw_id}' is not a lead number; open a lead from the lead table")
        return
    lead = run_action(lead_detail, get_db(), actor, int(raw_id))
    if lead is None:
        return
    st.subheader(md(lead.name))
    origin = f" · imported from {md(lead.import_label)}" if lead.import_label else ""
    st.caption(f"Lead #{lead.id} · added {_when(lead.created_at)} · changed {_when(lead.updated_at)}{origin}")
    _reachability(lead)
    details, campaigns, messages, replies, history = st.tabs([
        "Details",
        f"Campaigns ({len(lead.enrolments)})",
        f"Messages ({len(lead.messages)})",
        f"Replies ({len(lead.replies)})",
        f"History ({len(lead.audit)})",
    ])
    with details:
        _details(lead)
    with campaigns:
        _campaigns(lead)
    with messages:
        _messages(lead)
    with replies:
        _replies(lead)
    with history:
        _history(lead)
    if actor.can(Permission.manage_leads):
        _edit(actor, lead)
        _erase(actor, lead)


def _reachability(lead: LeadDetail) -> None:
    """Opted out or not, and which of its addresses are suppressed and why."""
    if lead.opted_out_at:
        st.warning(f"Opted out on {_when(lead.opted_out_at)}: no campaign messages this lead.",
                   icon=":material/block:")
    else:
        st.caption("Not opted out.")
    for match in lead.suppressions:
        st.warning(
            f"{CHANNEL_WORDS.get(match.channel, match.channel)} {md(match.address)} is suppressed since "
            f"{_when(match.since)} because of {SUPPRESSION_WORDS.get(match.reason, md(match.reason))}: "
            "it is never messaged.",
            icon=":material/do_not_disturb_on:",
        )


def _details(lead: LeadDetail) -> None:
    rows = [{"Field": label, "Value": lead.fields.get(name) or ""} for name, label in EDITABLE_FIELDS.items()]
    rows.append({"Field": "Tags", "Value": ", ".join(lead.tags)})
    st.container(key="lead_fields").dataframe(pd.DataFrame(rows), hide_index=True)
    if lead.alternates:
        st.markdown("**Other phones and emails** (best first)")
        st.container(key="lead_alternates").dataframe(pd.DataFrame([
            {"Channel": CHANNEL_WORDS.get(str(a.get("channel")), a.get("channel")), "Address": a.get("value"),
             "From column": a.get("label")} for a in lead.alternates
        ]), hide_index=True)
    if lead.custom_fields:
        st.markdown("**Custom fields**")
        st.container(key="lead_custom_fields").dataframe(
            pd.DataFrame([{"Field": k, "Value": str(v)} for k, v in lead.custom_fields.items()]),
            hide_index=True)


def _campaigns(lead: LeadDetail) -> None:
    if not lead.enrolments:
        st.caption("Not in any campaign.")
        return
    st.container(key="lead_campaigns").dataframe(pd.DataFrame([
        {"Campaign": e.campaign, "Channel": CHANNEL_WORDS.get(e.channel, e.channel),
         "Campaign status": e.campaign_status, "Variant": e.variant, "Step": e.step,
         "Where it stands": e.state,
         "Replied": _when(e.replied_at), "Cost": format_usd(e.cost_microusd)}
        for e in lead.enrolments
    ]), hide_index=True)


def _messages(lead: LeadDetail) -> None:
    if not lead.messages:
        st.caption("No message sent to this lead yet.")
        return
    st.container(key="lead_messages").dataframe(pd.DataFrame([
        {"Campaign": m.campaign, "Step": m.step, "Channel": CHANNEL_WORDS.get(m.channel, m.channel),
         "To": m.to,
         "Subject": m.subject or "", "Text": m.body, "Status": m.status, "Sent": _when(m.sent_at),
         "Segments": m.segments, "Cost": format_usd(m.cost_microusd)}
        for m in lead.messages
    ]), hide_index=True)
    st.caption("Cost: the model calls that wrote the message.")


def _replies(lead: LeadDetail) -> None:
    if not lead.replies:
        st.caption("No reply yet.")
        return
    for reply in lead.replies:
        where = f" to {md(reply.campaign)}" if reply.campaign else ""
        st.markdown(f"- Replied{where} on {_when(reply.at)}")


def _history(lead: LeadDetail) -> None:
    if not lead.audit:
        st.caption("Nothing recorded yet.")
        return
    st.container(key="lead_history").dataframe(pd.DataFrame([
        {"When": _when(a.at), "Who": a.who, "What": a.action, "Details": a.details} for a in lead.audit
    ]), hide_index=True)


def _edit_key(lead_id: int, name: str) -> str:
    return f"lead_edit_{lead_id}_{name}"


def _edit(actor: Actor, lead: LeadDetail) -> None:
    with st.expander("Edit this lead", icon=":material/edit:"):
        st.caption("Checked like an import: phones become international numbers, emails are normalised; "
                   "an empty country or time zone is taken from the phone.")
        with st.form(f"lead_edit_{lead.id}"):
            typed: dict[str, str] = {}
            for name, label in EDITABLE_FIELDS.items():
                widget = st.text_area if name == "notes" else st.text_input
                typed[name] = widget(label, value=lead.fields.get(name) or "", key=_edit_key(lead.id, name))
            tags = st.text_input("Tags (comma-separated)", value=", ".join(lead.tags),
                                 key=_edit_key(lead.id, "tags"))
            saved = st.form_submit_button("Save changes", type="primary")
        if not saved:
            return
        try:
            edited = update_lead(get_db(), actor, lead.id, typed, tags)
        except LeadEditRefused as refused:
            st.error("Not saved: " + plural(len(refused.problems), "problem") + " to fix.")
            for problem in refused.problems:
                show_error(problem)
            return
        except LeadflowError as exc:
            show_error(exc)
            return
        for name in [*EDITABLE_FIELDS, "tags"]:
            st.session_state.pop(_edit_key(lead.id, name), None)  # the form shows the saved values
        changed = ", ".join(EDITABLE_FIELDS.get(n, n).lower() for n in edited.changed)
        st.session_state[FLASH_KEY] = f"Saved: {changed} changed." if changed else "Nothing changed."
        st.rerun()


def _erase(actor: Actor, lead: LeadDetail) -> None:
    with st.expander("Erase this lead (an erasure request)", icon=":material/delete_forever:"):
        plan = run_action(plan_erasure, get_db(), actor, lead.id)
        if plan is None:
            return
        name = md(plan.name)
        tags, enrolments = plural(plan.tags, "tag"), plural(plan.enrolments, "enrolment")
        st.warning(
            f"Erasing deletes **{name}**, its {tags} and its {enrolments} (its place in every campaign, "
            "its drafts and their processing log).  \n"
            f"Messages sent to it ({plan.messages:,}) stay in the send ledger for the sent counts and the "
            "costs, anonymised: the recipient, the subject and the text are removed.  \n"
            f"Its phones and emails ({plan.addresses:,}, {plan.already_suppressed:,} suppressed already) "
            "stay suppressed as an erasure: a re-import may bring the lead back, but no campaign will "
            "message these addresses again.  \n"
            "The audit log keeps that the lead was erased, by whom and when, without its details. "
            "This cannot be undone."
        )
        typed = st.text_input(f"Type the lead's name to confirm: {name}", key=f"lead_erase_confirm_{lead.id}")
        if st.button(f"Erase {name}", key="lead_erase", type="primary",
                     disabled=not name_matches(typed, plan.name)):
            done = run_action(erase_lead, get_db(), actor, lead.id, confirm=typed)
            if done is not None:
                st.session_state[ERASED_FLASH_KEY] = (
                    f"Lead #{done.lead_id} was erased: {plural(done.messages, 'message')} kept anonymised, "
                    f"its addresses suppressed."
                )
                _close_lead()
                st.rerun()
