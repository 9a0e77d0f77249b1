"""Money: integer micro-dollars everywhere, dollars only where a person types or reads them."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationError

MICROUSD_PER_USD = 1_000_000
# The printf format of a number_input holding dollars: the precision format_usd shows under a dollar,
# so a $0.005 cap is not shown (and saved back) as $0.01.
MONEY_FIELD_FORMAT = "%.4f"


def usd_to_microusd(value: Any) -> int | None:
    """Dollars as typed in a form or a command-line flag ("12.50", "$1,000", 3) as micro-dollars.

    Blank (None, "", NaN from an empty table cell) means none. The sign is kept: whether a
    negative amount is allowed is the caller's rule.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    try:
        dollars = Decimal(str(value).strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"'{value}' is not an amount in dollars") from None
    if not dollars.is_finite():
        raise ValidationError(f"'{value}' is not an amount in dollars")
    return int((dollars * MICROUSD_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def microusd_to_usd(microusd: int | None) -> float | None:
    return None if microusd is None else microusd / MICROUSD_PER_USD


def format_usd(microusd: int | None) -> str:
    """Micro-dollars as dollars for people, the one money format of every page and the CLI.

    Under a dollar four decimals, so sub-cent costs and caps read as they are ($0.0050, $0.0043);
    from a dollar up cents ($1,234.50). Money fields show the same four decimals (MONEY_FIELD_FORMAT).
    """
    if microusd is None:
        return "n/a"
    dollars = microusd / MICROUSD_PER_USD
    if dollars and abs(dollars) < 1:
        return f"${dollars:,.4f}"
    return f"${dollars:,.2f}"
