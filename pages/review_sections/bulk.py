"""Bulk review: approve or reject every selected draft at once; refusals are listed, not fatal."""

from __future__ import annotations

import streamlit as st

from core.db import Database
from core.permissions import Actor
from core.pipeline.review import BulkResult, ReviewItem, approve_many, reject_many
from core.text import plural
from pages.common import md, run_action
from pages.review_sections.draft import done, selection_key


def _report(verb: str, result: BulkResult) -> None:
    message = f"{verb} {plural(len(result.done), 'draft')}."
    if result.refused:
        message += " Not done: " + "; ".join(f"#{i}: {md(why)}" for i, why in result.refused.items())
    done(message)


def show(db: Database, actor: Actor, items: list[ReviewItem]) -> None:
    selected = [i.campaign_lead_id for i in items if st.session_state.get(selection_key(i))]
    select_column, approve_column, reason_column, reject_column = st.columns([2, 2, 4, 2])
    if select_column.button("Select all on this page", key="review_select_all"):
        for item in items:
            st.session_state[selection_key(item)] = True
        st.rerun()
    if approve_column.button(f"Approve {len(selected)} selected", key="review_bulk_approve",
                             disabled=not selected):
        result = run_action(approve_many, db, actor, selected)
        if result is not None:
            _report("Approved", result)
    reason = reason_column.text_input("Reason for rejecting the selected drafts",
                                      key="review_bulk_reason", label_visibility="collapsed",
                                      placeholder="Reason for rejecting the selected drafts")
    if reject_column.button(f"Reject {len(selected)} selected", key="review_bulk_reject",
                            disabled=not selected):
        result = run_action(reject_many, db, actor, selected, reason)
        if result is not None:
            _report("Rejected", result)
