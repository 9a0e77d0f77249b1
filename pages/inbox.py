"""Inbox: replies from leads with the reply agent's reading of them; managers answer, assign and close."""

from __future__ import annotations

import math

import streamlit as st

from core.campaigns import list_campaigns
from core.inbound.inbox import assignable_users, count_inbox, list_inbox
from core.permissions import Permission
from core.text import plural
from pages.common import get_db, require_page, run_action
from pages.inbox_sections import filters, reply

PAGE_SIZE = 20

actor = require_page(Permission.view_inbox)
db = get_db()
st.title("Inbox")
if flash := st.session_state.pop(reply.FLASH_KEY, None):
    st.success(flash)
if not actor.can(Permission.handle_replies):
    st.caption("Your role can read the inbox; managers answer, assign and close replies.")

campaigns = run_action(list_campaigns, db, actor) or []
view = filters.show(campaigns)
total = run_action(count_inbox, db, actor, view) or 0
if not total:
    st.info("No replies match these filters. Replies arrive by SMS webhook and from the mailbox; the "
            "reply agent reads each one within seconds.")
    st.stop()
pages = math.ceil(total / PAGE_SIZE)
page = 1
if pages > 1:
    page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="inbox_page"))
st.caption(f"{plural(total, 'reply', 'replies')}, newest first.")
users = run_action(assignable_users, db, actor) or {}
for item in run_action(list_inbox, db, actor, view, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE) or []:
    reply.show(db, actor, item, users)
