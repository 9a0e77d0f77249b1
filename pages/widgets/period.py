"""A date-range picker for reports: a preset ("Last 30 days") or a custom range; owns its keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import streamlit as st

from core.analytics.period import Period, Preset, period_for

ALL_PRESETS: tuple[Preset, ...] = tuple(Preset)


def show(key: str, *, default: Preset, presets: Sequence[Preset] = ALL_PRESETS) -> Period | None:
    """The period picked, or None while a custom range still lacks its last day."""
    options = [p.value for p in presets]
    picked = Preset(st.selectbox("Period (UTC days)", options, index=options.index(default.value),
                                 key=f"{key}_preset"))
    today = datetime.now(UTC).date()
    if picked is not Preset.custom:
        return period_for(picked, today)
    days = st.date_input("From, to", value=(today.replace(day=1), today), max_value=today,
                         key=f"{key}_days")
    if not isinstance(days, tuple) or len(days) != 2:
        st.info("Pick the last day of the range.")
        return None
    return period_for(picked, today, custom=(days[0], days[1]))
