"""Dollars as people type them, to the integer micro-dollars everything else keeps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationError
from core.money import microusd_to_usd, usd_to_microusd


@pytest.mark.parametrize(
    ("typed", "microusd"),
    [
        (None, None), ("", None), ("  ", None), (float("nan"), None),  # blank: none
        ("12.5", 12_500_000), (12.5, 12_500_000), (3, 3_000_000), (0, 0),
        ("$1,000", 1_000_000_000), (Decimal("1.23"), 1_230_000),
        ("0.000001", 1), (0.000001, 1),
        ("0.0000015", 2),  # half a micro-dollar rounds up, wherever it is typed
        (0.1 + 0.2, 300_000),
        ("-2", -2_000_000),  # the sign is kept: the caller's rule decides (a budget refuses it)
    ],
)
def test_dollars_to_microusd(typed: Any, microusd: int | None) -> None:
    assert usd_to_microusd(typed) == microusd


@pytest.mark.parametrize("typed", ["ten dollars", "nan", "NaN", "inf", "-Infinity", "1.2.3"])
def test_what_is_not_an_amount_is_refused(typed: str) -> None:
    with pytest.raises(ValidationError, match="is not an amount in dollars"):
        usd_to_microusd(typed)


def test_microusd_back_to_dollars() -> None:
    assert microusd_to_usd(None) is None
    assert microusd_to_usd(12_500_000) == 12.5
