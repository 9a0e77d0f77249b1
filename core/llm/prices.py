"""Model prices (data/model_prices.csv, overridable per tenant) and the cost of a call.

Prices are US dollars per million tokens; costs are integer micro-dollars. One token priced at
$X per million costs exactly X micro-dollars, so cost = input_tokens * input_price +
output_tokens * output_price, rounded half up once per call.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.errors import ValidationError


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input_usd_per_1m: Decimal
    output_usd_per_1m: Decimal
    read_on: date | None = None


class PriceUnknown(ValidationError):
    """No price for a model: a call whose cost cannot be counted is not made."""


_cache: dict[Path, tuple[float, dict[str, ModelPrice]]] = {}
_cache_lock = threading.Lock()


def load_price_table(path: Path) -> dict[str, ModelPrice]:
    """The price table from the CSV file, re-read when the file changes."""
    mtime = path.stat().st_mtime
    with _cache_lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
    table: dict[str, ModelPrice] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                price = ModelPrice(
                    model=row["model"].strip(),
                    input_usd_per_1m=Decimal(row["input_usd_per_1m"]),
                    output_usd_per_1m=Decimal(row["output_usd_per_1m"]),
                    read_on=date.fromisoformat(row["price_read_on"]) if row.get("price_read_on") else None,
                )
            except (KeyError, InvalidOperation, ValueError) as exc:
                raise ValidationError(f"{path.name} row {row_number}: {exc}") from None
            table[price.model] = price
    with _cache_lock:
        _cache[path] = (mtime, table)
    return table


def _override(model: str, overrides: dict[str, Any]) -> ModelPrice | None:
    entry = overrides.get(model)
    if not isinstance(entry, dict):
        return None
    try:
        return ModelPrice(model, Decimal(str(entry["input"])), Decimal(str(entry["output"])))
    except (KeyError, InvalidOperation):
        raise ValidationError(
            f"the tenant's price override for '{model}' needs numeric 'input' and 'output' "
            "prices in USD per million tokens"
        ) from None


def price_for(
    model: str, table: dict[str, ModelPrice], overrides: dict[str, Any] | None = None
) -> ModelPrice:
    """The tenant's override, else the table's price; a dated snapshot uses its family's price."""
    candidates = [model]
    # "gpt-4o-mini-2024-07-18" is priced as "gpt-4o-mini": the longest known prefix wins.
    candidates += sorted((m for m in table if model.startswith(m + "-")), key=len, reverse=True)
    for name in candidates:
        if overrides and (price := _override(name, overrides)) is not None:
            return price
        if name in table:
            return table[name]
    raise PriceUnknown(
        f"there is no price for model '{model}': add it to data/model_prices.csv or to the "
        "tenant's price overrides"
    )


def cost_microusd(price: ModelPrice, *, input_tokens: int, output_tokens: int) -> int:
    cost = input_tokens * price.input_usd_per_1m + output_tokens * price.output_usd_per_1m
    return int(cost.quantize(Decimal(1), rounding=ROUND_HALF_UP))
