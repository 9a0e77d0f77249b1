"""A run's progress in words, for the Run tab and the Run monitor: what happened, one bar per step
(first touch, follow-up 1, ...) with what was sent and what waits and why, and when work is due next."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from core.campaign_progress import CampaignProgress
from core.status_words import due_words
from core.text import plural


def show(progress: CampaignProgress) -> None:
    now = datetime.now(UTC)
    st.markdown(f"**{progress.status_text.capitalize()}** · {plural(progress.enrolled, 'lead')} enrolled")
    for step in progress.steps:
        share = step.sent / progress.enrolled if progress.enrolled else 0.0
        # Only counts, fixed words and times: nothing a user typed reaches this Markdown.
        st.progress(min(1.0, share), text=f"{step.name.capitalize()}: {step.summary(now)}")
    idle = not any(step.due for step in progress.steps)
    if progress.status == "running" and progress.next_due_at is not None and idle:
        st.info(f"Nothing to send right now: the next lead is due {due_words(progress.next_due_at, now)}.")
