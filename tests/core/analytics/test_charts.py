"""The analytics charts' layouts: days as days, money from zero, empty charts in words, legends clear."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import plotly.graph_objects as go
import pytest

from core.analytics.charts import DAY_MS
from core.analytics.costs import (
    Burndown,
    burndown_figure,
    spend_by_day_figure,
    spend_by_figure,
    tokens_figure,
)
from core.analytics.funnel import breakdown_figure, funnel_figure

NOV_3 = date(2026, 11, 3)


def _by_day(first: date, costs: list[float]) -> pd.DataFrame:
    days = [first + timedelta(days=i) for i in range(len(costs))]
    return pd.DataFrame(
        {
            "day": days,
            "cost_usd": costs,
            "input_tokens": [100] * len(costs),
            "output_tokens": [50] * len(costs),
        }
    )


def _ms(value: object) -> float:
    return pd.Timestamp(value).value / 1_000_000  # type: ignore[arg-type]


def _assert_days(axis: go.layout.XAxis, first: date, last: date) -> None:
    """Ticks fall on whole days, label days (no time of day) and the range shows every day whole."""
    assert axis.type == "date"
    assert isinstance(axis.dtick, str) and axis.dtick.startswith("M") or axis.dtick % DAY_MS == 0
    assert pd.Timestamp(axis.tick0) == pd.Timestamp(first)
    assert "%-d" in axis.tickformat or "%d" in axis.tickformat
    assert not any(unit in axis.tickformat for unit in ("%H", "%M", "%S", "%L", "%f", "%p"))
    low, high = (_ms(v) for v in axis.range)
    assert low <= _ms(first) - DAY_MS / 2 and high >= _ms(last) + DAY_MS / 2  # whole bars


@pytest.mark.parametrize("days", [1, 2, 3, 7])
def test_a_short_range_has_a_tick_per_day_and_a_bar_per_day(days: int) -> None:
    figure = spend_by_day_figure(_by_day(NOV_3, [0.0042] * days))
    axis = figure.layout.xaxis
    _assert_days(axis, NOV_3, NOV_3 + timedelta(days=days - 1))
    assert axis.dtick == DAY_MS
    low, high = (_ms(v) for v in axis.range)
    # At least a week across: one day is one bar among days, not a bar the width of the chart.
    assert high - low >= 7 * DAY_MS


@pytest.mark.parametrize("days", [31, 90, 366])
def test_a_long_range_ticks_on_whole_days(days: int) -> None:
    figure = spend_by_day_figure(_by_day(date(2026, 1, 1), [0.01] * days))
    _assert_days(figure.layout.xaxis, date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=days - 1))


def test_a_range_across_new_year_names_the_year() -> None:
    figure = spend_by_day_figure(_by_day(date(2026, 12, 30), [0.01] * 4))
    assert "%Y" in figure.layout.xaxis.tickformat


@pytest.mark.parametrize(
    "build",
    [
        lambda: spend_by_day_figure(_by_day(NOV_3, [0.0001, 0.0002])).layout.yaxis,
        lambda: (
            spend_by_figure(pd.DataFrame({"cost_usd": [0.003], "model": ["gpt-4o"]}), "model").layout.xaxis
        ),
    ],
)
def test_money_axes_start_at_zero(build: object) -> None:
    axis = build()  # type: ignore[operator]
    assert axis.rangemode == "tozero"
    assert axis.tickformat.startswith("$")


@pytest.mark.parametrize("costs", [[], [0.0], [0.0, 0.0, 0.0]])
def test_no_spend_says_so_instead_of_an_axis(costs: list[float]) -> None:
    figure = spend_by_day_figure(_by_day(NOV_3, costs))
    assert [a.text for a in figure.layout.annotations] == ["No spend yet"]
    assert figure.layout.yaxis.visible is False and figure.layout.xaxis.visible is False
    assert not figure.data


def _burndown(spent: list[int], budget: int | None, days_in_month: int = 30) -> Burndown:
    month = date(2026, 11, 1)
    daily = pd.DataFrame(
        {"day": [month + timedelta(days=i) for i in range(len(spent))], "spend_microusd": spent}
    )
    daily["cumulative_microusd"] = daily["spend_microusd"].cumsum()
    total = int(sum(spent))
    return Burndown(month, days_in_month, daily, total, total * 2, budget)


def test_the_burndown_of_a_month_without_spend_or_budget_says_so() -> None:
    figure = burndown_figure(_burndown([0, 0, 0], None))
    assert [a.text for a in figure.layout.annotations] == ["No spend yet this month"]
    assert figure.layout.yaxis.visible is False


@pytest.mark.parametrize("budget", [None, 20_000])
def test_the_burndown_has_day_ticks_and_a_zero_baseline(budget: int | None) -> None:
    figure = burndown_figure(_burndown([1000, 0, 500], budget))
    _assert_days(figure.layout.xaxis, date(2026, 11, 1), date(2026, 11, 30))
    assert figure.layout.yaxis.rangemode == "tozero"


def test_a_burndown_on_the_first_day_shows_a_day() -> None:
    figure = burndown_figure(_burndown([1000], None))
    _assert_days(figure.layout.xaxis, date(2026, 11, 1), date(2026, 11, 30))
    assert figure.layout.xaxis.dtick % DAY_MS == 0


def _breakdown() -> pd.DataFrame:
    return pd.DataFrame(
        {"variant": ["A", "B"], "sent": [10, 12], "replied": [1, 3], "reply_rate": [0.1, 0.25]}
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: breakdown_figure(_breakdown(), "variant"),
        lambda: tokens_figure(_by_day(NOV_3, [0.01, 0.02])),
        lambda: burndown_figure(_burndown([1000, 500], 20_000)),
    ],
)
def test_legends_sit_above_the_plot_clear_of_every_axis(build: object) -> None:
    figure = build()  # type: ignore[operator]
    legend = figure.layout.legend
    assert legend.orientation == "h"
    # Above the plot area (paper y >= 1, anchored at its bottom), with room kept for it under
    # the title: not over the right-hand axis, whose top label it used to hide.
    assert legend.y >= 1 and legend.yanchor == "bottom"
    assert figure.layout.margin.t >= 80


def test_the_breakdown_axes_are_named_and_start_at_zero() -> None:
    layout = breakdown_figure(_breakdown(), "variant").layout
    assert layout.yaxis.rangemode == "tozero" and layout.yaxis.title.text == "leads"
    assert layout.yaxis2.rangemode == "tozero" and layout.yaxis2.title.text == "reply rate"
    assert layout.yaxis2.tickformat == ".0%"


def test_a_funnel_has_no_legend_to_hide_anything() -> None:
    row = {"enrolled": 5, "sent": 4, "delivered": 3, "replied": 1, "opted_out": 0}
    assert funnel_figure(row, "All").layout.showlegend is False
