"""Admin, suppression list: who is never messaged, added by hand or from a provider's export, and
opting a lead back in."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.db import Database
from core.permissions import Actor
from core.suppressions import (
    REASON_WORDS,
    LeadOptOut,
    OptedIn,
    SuppressionRemoved,
    add_suppression,
    find_lead_opt_out,
    import_suppressions,
    list_suppressions,
    opt_in_lead,
    remove_suppression,
)
from core.text import plural, sentence
from pages.common import md, run_action

FLASH_KEY = "suppressions_flash"
OPT_IN_ADDRESS_KEY = "suppressions_opt_in_address"
# The address for the opt-in field at the next run (a widget's value cannot change once drawn).
OPT_IN_NEXT_KEY = "suppressions_opt_in_next"
CHANNELS = {"": "Both channels", "sms": "SMS (phone numbers)", "email": "Email"}
REASONS = {"stop": "STOP replies", "unsubscribe": "Unsubscribes", "bounce": "Bounces",
           "manual": "Do-not-contact list"}


def _channel_label(channel: str) -> str:
    # A module-level function, not a lambda: session state must stay picklable.
    return CHANNELS[channel]


def _reason_label(reason: str) -> str:
    return REASONS[reason]


def _add_form(db: Database, actor: Actor) -> None:
    with st.form("suppression_add", clear_on_submit=True):
        channel_column, address_column = st.columns([1, 3])
        channel = channel_column.selectbox("Channel", ["sms", "email"], format_func=_channel_label)
        address = address_column.text_input("Phone number or email to suppress")
        if st.form_submit_button("Suppress"):
            added = run_action(add_suppression, db, actor, channel=channel, address=address)
            if added is not None:
                st.success("Suppressed." if added else "That address was suppressed already.")


def _import_form(db: Database, actor: Actor) -> None:
    with st.form("suppression_import", clear_on_submit=True):
        upload = st.file_uploader("A list to suppress (CSV or XLSX: a STOP export, a do-not-contact "
                                  "list)", type=["csv", "txt", "xlsx"])
        channel_column, reason_column = st.columns(2)
        channel = channel_column.selectbox("Channel", ["sms", "email"], format_func=_channel_label,
                                           key="suppression_import_channel")
        reason = reason_column.selectbox("What the list is", list(REASONS), index=3,
                                         format_func=_reason_label)
        if st.form_submit_button("Import the list") and upload is not None:
            summary = run_action(import_suppressions, db, actor, file_name=upload.name,
                                 data=upload.getvalue(), channel=channel, reason=reason)
            if summary is not None:
                st.success(f"{plural(summary.added, 'address')} added, {summary.already:,} already "
                           f"suppressed, {plural(summary.rejected, 'row')} rejected.")
                if summary.rejects:
                    st.container(key="suppressions_rejects").dataframe(pd.DataFrame(summary.rejects).head(50),
                                                                       hide_index=True)


def removed_message(removed: SuppressionRemoved) -> str:
    """What removing a suppression changed, and what it did not (Markdown)."""
    text = f"{md(removed.address)} is no longer on the suppression list."
    if not removed.leads:
        return f"{text} No lead has this address."
    for lead in removed.leads:
        if lead.opted_out_at is not None:
            text += (f" {md(lead.name)}, the lead with this address, is still opted out, so campaigns "
                     "still leave them out: opt them back in below if they asked to hear from you again.")
        else:
            text += f" {md(lead.name)}, the lead with this address, can be messaged at it again."
    return text


def opted_in_message(done: OptedIn) -> str:
    """What opting a lead back in changed (Markdown)."""
    text = f"{md(done.lead.name)} is opted back in"
    if done.removed:
        text += f": {', '.join(md(a) for a in done.removed)} came off the suppression list"
    text += "."
    for kept in done.kept:
        text += f" {md(kept.address)} stays suppressed because of {REASON_WORDS[kept.reason]}."
    return text


def _lead_state(lead: LeadOptOut) -> str:
    state = (f"opted out since {lead.opted_out_at:%Y-%m-%d}" if lead.opted_out_at is not None
             else "not opted out")
    held = "; ".join(f"{md(s.address)} suppressed because of {REASON_WORDS[s.reason]}"
                     for s in lead.suppressions)
    return f"**{md(lead.name)}**: {state}" + (f"; {held}" if held else "") + "."


def _opt_in_section(db: Database, actor: Actor) -> None:
    st.markdown("**Opt a lead back in**")
    st.caption("For a lead who asked to hear from you again: the opt-out ends and the addresses "
               "suppressed by hand come off the list; the reason goes into the audit log. Not for a "
               "lead who replied STOP or unsubscribed: only the person can take that back, so it "
               "stays. A bounced address stays suppressed too.")
    if (address := st.session_state.pop(OPT_IN_NEXT_KEY, None)) is not None:
        st.session_state[OPT_IN_ADDRESS_KEY] = address
    typed = st.text_input("The lead's phone number or email", key=OPT_IN_ADDRESS_KEY)
    if not typed.strip():
        return
    lead = run_action(find_lead_opt_out, db, actor, typed)
    if lead is None:
        return
    st.markdown(_lead_state(lead))
    if lead.refusal:
        st.warning(md(sentence(lead.refusal)))
        return
    with st.form("suppression_opt_in", clear_on_submit=True):
        reason = st.text_input("Why they are opted back in (kept in the audit log)",
                               key="suppressions_opt_in_reason")
        if st.form_submit_button("Opt back in"):
            done = run_action(opt_in_lead, db, actor, lead.lead_id, reason=reason)
            if done is not None:
                st.session_state[FLASH_KEY] = opted_in_message(done)
                st.session_state[OPT_IN_NEXT_KEY] = ""
                st.rerun()


def show(db: Database, actor: Actor) -> None:
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    _add_form(db, actor)
    _import_form(db, actor)
    _list(db, actor)
    _opt_in_section(db, actor)


def _list(db: Database, actor: Actor) -> None:
    channel_column, search_column, page_column = st.columns([1, 2, 1])
    channel = channel_column.selectbox("Show", list(CHANNELS), format_func=_channel_label,
                                       key="suppressions_channel")
    search = search_column.text_input("Search", key="suppressions_search")
    page_number = page_column.number_input("Page", min_value=1, value=1, key="suppressions_page")
    page = run_action(list_suppressions, db, actor, channel=channel or None, search=search,
                      page=int(page_number))
    if page is None:
        return
    st.caption(f"{plural(page.total, 'suppressed address')} · page {page.page} of {page.pages}")
    st.container(key="suppressions_table").dataframe(pd.DataFrame([vars(r) for r in page.rows]),
                                                     hide_index=True)
    removable = {r.id: f"{r.address} ({r.channel})" for r in page.rows if r.reason == "manual"}
    if removable:
        chosen = st.selectbox("Added by hand by mistake?", list(removable),
                              format_func=removable.__getitem__, key="suppressions_remove_pick")
        if st.button("Remove this suppression", key="suppressions_remove"):
            removed = run_action(remove_suppression, db, actor, chosen)
            if removed is not None:
                st.session_state[FLASH_KEY] = removed_message(removed)
                if any(lead.opted_out_at is not None for lead in removed.leads):
                    st.session_state[OPT_IN_NEXT_KEY] = removed.address  # ready to opt them in
                st.rerun()  # the list above must not show it any more
