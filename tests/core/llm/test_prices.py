"""The price table, tenant overrides and the cost of a call in micro-dollars."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.config import DATA_DIR
from core.errors import ValidationError
from core.llm.prices import PriceUnknown, cost_microusd, load_price_table, price_for

TABLE = load_price_table(DATA_DIR / "model_prices.csv")


def test_the_shipped_table_has_every_model_with_a_date() -> None:
    for model in ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"):
        assert model in TABLE
        assert TABLE[model].read_on is not None
    # The offline model is billed as the campaign's model, so it has no row of its own.
    assert "offline" not in TABLE


@pytest.mark.parametrize(
    ("model", "input_tokens", "output_tokens", "expected"),
    [
        ("gpt-4o-mini", 1_000_000, 0, 150_000),  # $0.15 per million input tokens
        ("gpt-4o-mini", 0, 1_000_000, 600_000),
        ("gpt-4o-mini", 1000, 500, 450),
        ("gpt-4o-mini-2024-07-18", 1000, 500, 450),  # a dated snapshot priced as its family
        ("gpt-4o", 3, 1, 18),  # 3 x 2.5 + 1 x 10 = 17.5, rounded half up
    ],
)
def test_cost(model: str, input_tokens: int, output_tokens: int, expected: int) -> None:
    assert (
        cost_microusd(price_for(model, TABLE), input_tokens=input_tokens, output_tokens=output_tokens)
        == expected
    )


def test_tenant_override_wins() -> None:
    overrides = {"gpt-4o-mini": {"input": 1, "output": "2.5"}}
    price = price_for("gpt-4o-mini", TABLE, overrides)
    assert (price.input_usd_per_1m, price.output_usd_per_1m) == (Decimal(1), Decimal("2.5"))
    assert cost_microusd(price, input_tokens=10, output_tokens=10) == 35


def test_unknown_model_and_bad_override_are_errors_for_people() -> None:
    with pytest.raises(PriceUnknown, match="no price for model 'gpt-9'"):
        price_for("gpt-9", TABLE)
    with pytest.raises(ValidationError, match="numeric 'input' and 'output'"):
        price_for("gpt-4o", TABLE, {"gpt-4o": {"input": "cheap"}})


def test_a_broken_csv_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("model,input_usd_per_1m,output_usd_per_1m,price_read_on\nx,abc,1,2025-01-01\n")
    with pytest.raises(ValidationError, match="row 2"):
        load_price_table(path)
