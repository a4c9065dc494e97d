"""Column types: money as integer cents and percentages as integer ten-thousandths.

SQLite keeps ``Numeric`` as a float, so sums and large values would not be exact;
integers are exact on every engine and ``SUM`` stays exact in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.types import TypeDecorator


class _ScaledDecimal(TypeDecorator):
    """A Decimal stored as an integer count of 10**-places units."""

    impl: type[Integer] = BigInteger
    cache_ok = True
    places = 2

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money and percentages must be Decimal, never float")
        value = Decimal(value)
        scaled = value.scaleb(self.places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        quantum = Decimal(1).scaleb(-self.places)
        return Decimal(int(value)).scaleb(-self.places).quantize(quantum)

    @property
    def python_type(self) -> type:
        return Decimal


class Money(_ScaledDecimal):
    """Money as integer cents (2 places), read and written as ``Decimal``."""

    cache_ok = True
    places = 2


class Percent(_ScaledDecimal):
    """A percentage with 4 places (10.0000 for 10 %), stored as an integer."""

    impl = Integer
    cache_ok = True
    places = 4


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every engine (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timeutil.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type:
        return datetime
