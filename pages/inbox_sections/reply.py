"""One reply in the Inbox: the conversation, the class and its evidence, the suggested answer to edit
and send, the assignee, handled or not, and a referral's "add as lead"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.db import Database
from core.errors import LeadflowError
from core.inbound.answer import send_answer
from core.inbound.inbox import (
    InboxItem,
    add_referred_lead,
    assign_reply,
    conversation,
    set_handled,
)
from core.permissions import Actor, Permission
from pages.common import md, run_action, show_error
from pages.inbox_sections.filters import class_label

FLASH_KEY = "inbox_flash"
UNASSIGNED = 0


def _done(message: str) -> None:
    st.session_state[FLASH_KEY] = message
    st.rerun()


def _act(message: str, func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except LeadflowError as exc:
        show_error(exc)
        return
    _done(message)


def _conversation(db: Database, actor: Actor, item: InboxItem) -> None:
    entries = run_action(conversation, db, actor, item.lead_id) if item.lead_id else None
    for entry in entries or []:
        who = "Us" if entry.direction == "out" else item.lead_name
        status = entry.status if entry.direction == "out" else class_label(entry.status)
        label = "answer" if entry.details.get("answer") else entry.channel
        current = " ← this reply" if entry.inbound_id == item.id else ""
        st.caption(f"**{md(who)}** · {label} · {entry.at:%Y-%m-%d %H:%M} UTC · {md(status)}{current}")
        if entry.subject:
            st.text(f"Subject: {entry.subject}")
        st.text(entry.body)  # anyone's text: shown as typed, never as Markdown


def _summary(item: InboxItem) -> str:
    parts = [f"**{md(item.lead_name)}**", md(item.from_address), item.channel,
             f"{item.received_at:%Y-%m-%d %H:%M} UTC", f"**{class_label(item.classification)}**"]
    if item.campaign_name:
        parts.append(md(item.campaign_name))
    if item.handled_at:
        parts.append(f"handled by {md(item.handled_by or 'the agent')}")
    if item.assigned_to:
        parts.append(f"assigned to {md(item.assigned_to)}")
    return " · ".join(parts)


def _evidence(item: InboxItem) -> None:
    if item.evidence:
        st.caption("Evidence: " + "; ".join(md(e) for e in item.evidence)
                   + f" ({'the model' if item.detail.get('source') == 'model' else 'the rules'})")
    for action in item.detail.get("actions") or []:
        st.caption(f"Done: {md(action)}")
    if item.remind_at:
        st.info(f"Reminder: come back to this lead on {item.remind_at:%Y-%m-%d %H:%M} UTC.")
    for key in ("suggestion", "model_error", "model_skipped", "error"):
        if item.detail.get(key):
            st.caption(md(item.detail[key]))


def _referral(db: Database, actor: Actor, item: InboxItem, may_act: bool) -> None:
    person = item.person
    if not person:
        return
    named = ", ".join(md(v) for v in person.values())
    if item.referral_status == "added":
        st.success(f"Referred: {named}, added as lead #{item.detail['referral'].get('lead_id')}.")
        return
    st.info(f"Referred: {named}. Not imported: add them as a lead if you want to contact them.")
    if may_act and st.button("Add as lead", key=f"inbox_refer_{item.id}"):
        lead_id = run_action(add_referred_lead, db, actor, item.id)
        if lead_id is not None:
            _done(f"{md(person.get('name') or 'The referred person')} was added as lead #{lead_id}.")


def _answer(db: Database, actor: Actor, item: InboxItem) -> None:
    if item.lead_id is None or item.campaign_id is None:
        st.caption("This reply matches no lead of a campaign: answer it from your own mail or phone.")
        return
    key = f"inbox_answer_{item.id}"
    st.session_state.setdefault(key, item.suggested_reply or "")
    text = st.text_area("Answer (checked and sent on the lead's channel)", key=key, height=120)
    if st.button("Send answer", key=f"inbox_send_{item.id}", type="primary"):
        sent = run_action(send_answer, db, actor, item.id, text)
        if sent is not None:
            _done(f"Answer sent to {md(item.lead_name)}; the reply is handled.")


def _handling(db: Database, actor: Actor, item: InboxItem, users: dict[int, str]) -> None:
    assign_column, handled_column = st.columns([3, 2])
    options = {UNASSIGNED: "No one", **users}
    current = item.assigned_user_id if item.assigned_user_id in users else UNASSIGNED
    picked = assign_column.selectbox("Assigned to", list(options), index=list(options).index(current),
                                     format_func=options.__getitem__, key=f"inbox_assign_{item.id}")
    if picked != current:
        _act(f"Assigned to {md(options[picked])}.", assign_reply, db, actor, item.id,
             None if picked == UNASSIGNED else picked)
    if item.handled_at is None:
        if handled_column.button("Mark handled", key=f"inbox_handled_{item.id}"):
            _act("Marked handled.", set_handled, db, actor, item.id)
    elif handled_column.button("Reopen", key=f"inbox_reopen_{item.id}"):
        _act("Waiting for a person again.", reopen, db, actor, item.id)


def reopen(db: Database, actor: Actor, inbound_id: int) -> None:
    set_handled(db, actor, inbound_id, handled=False)


def show(db: Database, actor: Actor, item: InboxItem, users: dict[int, str]) -> None:
    may_act = actor.can(Permission.handle_replies)
    with st.container(border=True):
        st.markdown(_summary(item))
        with st.expander("Conversation", expanded=item.handled_at is None):
            _conversation(db, actor, item)
        _evidence(item)
        _referral(db, actor, item, may_act)
        if not may_act:
            if item.suggested_reply:
                st.caption("Suggested answer (a manager sends it):")
                st.text(item.suggested_reply)
            return
        _answer(db, actor, item)
        _handling(db, actor, item, users)
