"""A campaign picker that owns its session-state key; the Review queue reuses it with "All"."""

from __future__ import annotations

from core.campaigns import CampaignView
from core.status_words import campaign_status_word
from pages.widgets import id_select

ALL_CAMPAIGNS = 0


def show(
    key: str, campaigns: list[CampaignView], *, allow_all: bool = False, default: int | None = None
) -> int:
    """The picked campaign's id (ALL_CAMPAIGNS for "All campaigns" when `allow_all`).

    Keyed by id, so the pick survives a change of status in its label. It opens on `default`
    when that is one of the campaigns, else on the first option.
    """
    labels = {ALL_CAMPAIGNS: "All campaigns"} if allow_all else {}
    labels |= {c.id: f"{c.name} · {campaign_status_word(c.status)} (#{c.id})" for c in campaigns}
    return id_select.show("Campaign", key, labels, default=next(iter(labels)) if default is None else default)
