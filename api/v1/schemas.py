"""Shapes every resource shares: money as a decimal string with its currency, times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field, PlainSerializer

from core.money import MICROUSD_PER_USD

T = TypeVar("T")


def utc_iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z; naive datetimes (as SQLite returns them) are UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcDateTime = Annotated[datetime, PlainSerializer(utc_iso, return_type=str)]


class Money(BaseModel):
    amount: str = Field(
        description="Dollars as a decimal string, exact to the micro-dollar", examples=["0.004300"]
    )
    currency: str = Field(default="USD", examples=["USD"])

    @classmethod
    def of_microusd(cls, microusd: int | None) -> Money | None:
        if microusd is None:
            return None
        # Exact to the micro-dollar the database holds, never in exponent form: "0.004300".
        return cls(amount=format(Decimal(microusd) / MICROUSD_PER_USD, ".6f"))


class Page(BaseModel, Generic[T]):
    """A page of a list: `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None = None
