"""Review queue: drafts awaiting approval with their sources and guard results, one by one or in bulk."""

from __future__ import annotations

import math

import streamlit as st

from core.campaigns import list_campaigns
from core.permissions import Permission
from core.pipeline.review import ReviewFilter, review_queue, review_queue_count
from core.text import plural, plural_noun
from pages.common import get_db, require_page, run_action
from pages.review_sections import bulk, draft, filters

PAGE_SIZE = 20

actor = require_page(Permission.review_drafts)
db = get_db()
st.title("Review queue")
flash = st.session_state.pop(draft.FLASH_KEY, None)
if flash:
    st.success(flash)

campaigns = run_action(list_campaigns, db, actor) or []
names = {c.id: c.name for c in campaigns}
view = filters.show(db, actor, campaigns)
waiting = run_action(review_queue_count, db, actor, view)
if waiting is None:
    st.stop()
if not waiting:
    if view == ReviewFilter(campaign_id=view.campaign_id, sort=view.sort):
        st.info("No drafts await approval. Campaigns with **approval required** hold each draft here "
                "before it is sent.")
    else:
        st.info("No drafts awaiting approval match these filters.")
    st.stop()
pages = math.ceil(waiting / PAGE_SIZE)
page = 1
if pages > 1:
    page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1,
                               key="review_page"))
st.caption(f"{plural(waiting, 'draft')} {plural_noun(waiting, 'awaits', 'await')} approval, "
           f"{view.sort.value.lower()}.")
items = run_action(review_queue, db, actor, view, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
if items is None:
    st.stop()
bulk.show(db, actor, items)
for item in items:
    draft.show(db, actor, item, names.get(item.campaign_id, f"campaign {item.campaign_id}"))
