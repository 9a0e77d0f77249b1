"""A campaign picker that owns its session-state key; the Review queue reuses it with "All"."""

from __future__ import annotations

from core.campaigns import CampaignView
from pages.widgets import id_select

ALL_CAMPAIGNS = 0


def show(
    key: str, campaigns: list[CampaignView], *, allow_all: bool = False, prefer_running: bool = False
) -> int:
    """The picked campaign's id (ALL_CAMPAIGNS for "All campaigns" when `allow_all`).

    Keyed by id, so the pick survives a change of status in its label. The first option opens
    first, or with `prefer_running` the newest running campaign when there is one.
    """
    labels = {ALL_CAMPAIGNS: "All campaigns"} if allow_all else {}
    labels |= {c.id: f"{c.name} · {c.status} (#{c.id})" for c in campaigns}
    running = [c.id for c in campaigns if c.status == "running"] if prefer_running else []
    default = running[0] if running else next(iter(labels))
    return id_select.show("Campaign", key, labels, default=default)
