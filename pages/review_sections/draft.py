"""One draft awaiting approval: who it goes to, its sources, the guard's verdict; approve, edit, reject."""

from __future__ import annotations

import streamlit as st

from core.db import Database
from core.permissions import Actor
from core.pipeline.guard import GuardResult
from core.pipeline.review import ReviewItem, approve, check_edit, reject
from core.reports import format_usd
from core.text import plural
from pages.common import md, run_action, user_errors

FLASH_KEY = "review_flash"


def selection_key(item: ReviewItem) -> str:
    return f"review_pick_{item.campaign_lead_id}"


def done(message: str) -> None:
    """Show `message` after the rerun that drops the handled draft from the queue."""
    st.session_state[FLASH_KEY] = message
    st.rerun()


def _verdict(passed: bool, segments: int, encoding: str, body: str) -> str:
    details = [f"{plural(segments, 'SMS segment')}, {md(encoding)}" if segments else "",
               plural(len(body), "character")]
    return ("passed the checks" if passed else "did not pass the checks") + "".join(
        f" · {d}" for d in details if d)


def _guard(item: ReviewItem) -> None:
    guard = item.guard
    verdict = _verdict(bool(guard.get("passed")), guard.get("segments") or 0, guard.get("encoding", ""),
                       item.body or "")
    st.caption(f"Guard: {verdict}"
               + (f" · edited by user {md(guard['edited_by'])}" if guard.get("edited_by") else ""))
    for problem in guard.get("problems") or []:
        st.warning(md(problem))  # the guard quotes the model's draft


def _edit_guard(result: GuardResult) -> None:
    """The checks' verdict on the reviewer's text, in place of the model draft's."""
    verdict = _verdict(result.passed, result.segments, result.encoding, result.body)
    st.caption(f"Guard, on your edit (not saved yet): {verdict}")
    for problem in result.problems:
        st.warning(md(problem))


def show(db: Database, actor: Actor, item: ReviewItem, campaign_name: str) -> None:
    key = item.campaign_lead_id
    with st.container(border=True):
        pick_column, who_column = st.columns([1, 11])
        pick_column.checkbox("Select", key=selection_key(item), label_visibility="collapsed")
        # Every value from the lead (or the campaign) escaped: a name like ![x](http://host/p)
        # would otherwise make the reviewer's browser fetch it.
        who_column.markdown(
            f"**{md(item.lead_name)}**" + (f", {md(item.company)}" if item.company else "")
            + f" · {md(item.to_address or 'no address')} · {md(campaign_name)} · step {item.step}, "
            f"variant {md(item.variant)} · #{key} · cost {format_usd(item.cost_microusd)}")
        draft_column, facts_column = st.columns([3, 2])
        with draft_column:
            if item.subject is not None:
                subject = st.text_input("Subject", item.subject, key=f"review_subject_{key}")
            body = st.text_area("Draft", item.body or "", key=f"review_body_{key}", height=120)
            edited = body != (item.body or "") or (item.subject is not None and subject != item.subject)
            checked = None
            if edited:
                checked = run_action(
                    check_edit, db, actor, key,
                    edited_body=body if body != (item.body or "") else None,
                    edited_subject=subject if item.subject is not None and subject != item.subject else None,
                )
            if checked is not None:
                _edit_guard(checked)
            else:
                _guard(item)
        with facts_column:
            st.markdown("**Sources**")
            if item.facts:
                st.container(key=f"review_facts_{key}").dataframe(
                    [{"fact": f.get("fact"), "source": f.get("source")} for f in item.facts],
                    hide_index=True, width="stretch")
            else:
                st.caption("No research facts.")
        approve_column, reason_column, reject_column = st.columns([2, 3, 1])
        label = "Save the edit and approve" if edited else "Approve"
        if approve_column.button(label, key=f"review_approve_{key}", type="primary"):
            changes: dict[str, str | None] = {"edited_body": body if body != (item.body or "") else None}
            if item.subject is not None and subject != item.subject:
                changes["edited_subject"] = subject
            with user_errors():
                approve(db, actor, key, **changes)
                done(f"Approved the draft for {md(item.lead_name)}" + (" with your edit." if edited else ".")
                     + " The runner sends it shortly.")
        reason = reason_column.text_input("Reason to reject", key=f"review_reason_{key}",
                                          placeholder="Reason to reject",
                                          label_visibility="collapsed")
        if reject_column.button("Reject", key=f"review_reject_{key}"):
            with user_errors():
                reject(db, actor, key, reason)
                done(f"Rejected the draft for {md(item.lead_name)}.")
