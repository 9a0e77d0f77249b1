"""Layout shared by the analytics charts: day axes, money axes from zero, legends that hide nothing.

Plotly's defaults suit none of these: a date axis over one day zooms in to milliseconds and its
bar fills the width, an all-zero money axis spans -$1 to $1, and the legend sits over the right
of the plot where a second axis has its labels.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go

DAY_MS = 86_400_000
# A window narrower than this is widened around its days, so one day is a bar among days.
MIN_DAYS_SHOWN = 7
MONEY_TICKS = "$,.4~f"
# Horizontal, above the plot area and below the title: clear of both axes and of the bars.
LEGEND_ABOVE: dict[str, Any] = {
    "orientation": "h",
    "x": 1,
    "xanchor": "right",
    "y": 1.02,
    "yanchor": "bottom",
    "title": {"text": ""},
}
MARGIN = {"t": 40, "b": 0}
MARGIN_WITH_LEGEND = {"t": 80, "b": 0}


def _as_datetime(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def day_axis(first: date, last: date) -> dict[str, Any]:
    """An x axis of whole days from `first` to `last`: one tick per day (per week or month when long)."""
    days = (last - first).days + 1
    pad = max(0, MIN_DAYS_SHOWN - days) / 2 + 0.5
    start = _as_datetime(first) - timedelta(days=pad)
    end = _as_datetime(last) + timedelta(days=pad)
    if days <= 2 * MIN_DAYS_SHOWN:
        dtick: int | str = DAY_MS
    elif days <= 100:
        dtick = 7 * DAY_MS
    else:
        dtick = "M1"
    tickformat = "%b %-d" if first.year == last.year else "%b %-d, %Y"
    return {
        "type": "date",
        "range": [start, end],
        "dtick": dtick,
        "tick0": _as_datetime(first),
        "tickformat": tickformat,
        "hoverformat": "%a %b %-d, %Y",
        "title": {"text": ""},
    }


def money_axis(title: str = "USD") -> dict[str, Any]:
    """A dollar axis that starts at zero, so a small day does not look like nothing or a loss."""
    return {"tickformat": MONEY_TICKS, "rangemode": "tozero", "title": {"text": title}}


def count_axis(title: str) -> dict[str, Any]:
    return {"rangemode": "tozero", "title": {"text": title}}


def empty_figure(title: str, message: str) -> go.Figure:
    """A chart with nothing to plot: its title and a line of text in place of empty axes."""
    figure = go.Figure()
    figure.update_layout(
        title=title,
        margin=MARGIN,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 16},
            }
        ],
    )
    return figure
