"""Review queue: drafts awaiting approval with their sources and guard results, one by one or in bulk."""

from __future__ import annotations

import math

import streamlit as st

from core.campaigns import list_campaigns
from core.permissions import Permission
from core.pipeline.review import review_queue, review_queue_count
from core.text import plural, plural_noun
from pages.common import get_db, require_page, run_action
from pages.monitor_sections import picker
from pages.review_sections import bulk, draft

PAGE_SIZE = 20

actor = require_page(Permission.review_drafts)
db = get_db()
st.title("Review queue")
flash = st.session_state.pop(draft.FLASH_KEY, None)
if flash:
    st.success(flash)

campaigns = run_action(list_campaigns, db, actor) or []
names = {c.id: c.name for c in campaigns}
filter_column, page_column = st.columns([3, 1])
with filter_column:
    picked = picker.show("review_campaign", campaigns, allow_all=True)
campaign_id = None if picked == picker.ALL_CAMPAIGNS else picked
waiting = review_queue_count(db, actor, campaign_id=campaign_id)
if not waiting:
    st.info("No drafts await approval. Campaigns with **approval required** hold each draft here "
            "before it is sent.")
    st.stop()
pages = math.ceil(waiting / PAGE_SIZE)
page = 1
if pages > 1:
    page = int(page_column.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1,
                               key="review_page"))
st.caption(f"{plural(waiting, 'draft')} {plural_noun(waiting, 'awaits', 'await')} approval, oldest first.")
items = review_queue(db, actor, campaign_id=campaign_id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
bulk.show(db, actor, items)
for item in items:
    draft.show(db, actor, item, names.get(item.campaign_id, f"campaign {item.campaign_id}"))
