"""Statuses in a sales manager's words: every status has one, and a finished run says what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.models import CampaignStatus, EnrolmentStatus, MessageStatus
from core.status_words import (
    campaign_status_text,
    campaign_status_word,
    due_words,
    lead_status_word,
    message_status_word,
    step_name,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(("word_of", "statuses"), [
    (campaign_status_word, CampaignStatus), (lead_status_word, EnrolmentStatus),
    (message_status_word, MessageStatus),
])
def test_no_status_is_shown_as_it_is_stored(word_of: object, statuses: type) -> None:
    words = {s.value: word_of(s.value) for s in statuses}  # type: ignore[operator]
    assert not any("_" in w or w == "empty" for w in words.values()), words


@pytest.mark.parametrize(("status", "word"), [
    ("awaiting_approval", "waiting for review"), ("in_progress", "being written"),
    ("pending", "waiting"), ("unknown", "send unconfirmed"),
])
def test_lead_statuses_read_as_people_say_them(status: str, word: str) -> None:
    assert lead_status_word(status) == word


@pytest.mark.parametrize(("status", "leads", "sent", "text"), [
    ("completed", {"failed": 73}, 0, "completed: 0 sent, 73 failed"),
    ("completed", {"sent": 70, "skipped": 2}, 70, "completed: 70 sent, 2 skipped"),
    ("cancelled", {"cancelled": 5, "sent": 1}, 3, "cancelled: 3 sent, 5 cancelled"),
    ("completed", {"sent": 1200}, 1200, "completed: 1,200 sent"),
    ("running", {"failed": 73}, 0, "running"),
    ("failed", {"unknown": 1}, 0, "stopped by an error: 0 sent, 1 send unconfirmed"),
    ("completed", None, 0, "completed"),
])
def test_a_finished_campaign_says_what_happened(status: str, leads: dict[str, int] | None, sent: int,
                                                text: str) -> None:
    assert campaign_status_text(status, leads, sent) == text


@pytest.mark.parametrize(("step", "name"), [(0, "first touch"), (1, "follow-up 1"), (3, "follow-up 3")])
def test_steps_are_named(step: int, name: str) -> None:
    assert step_name(step) == name


@pytest.mark.parametrize(("later", "words"), [
    (timedelta(0), "now"), (timedelta(seconds=-5), "now"), (timedelta(seconds=20), "in 1 min"),
    (timedelta(minutes=12), "in 12 min"), (timedelta(hours=48), "in 48 h (Thu 12:00 UTC)"),
    (timedelta(days=9, hours=-3), "on Thu 10 Dec 09:00 UTC"),
])
def test_due_times_read_as_people_say_them(later: timedelta, words: str) -> None:
    assert due_words(NOW + later, NOW) == words
