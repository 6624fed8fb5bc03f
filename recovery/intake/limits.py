"""Every value of a normalized event checked against the column that will store it, before anything is
written: the same outcome on SQLite (which enforces no lengths) and PostgreSQL (which fails the whole
transaction, and before this every retry of it: a delivery that could never be applied).

Free text (names, the order's source) is truncated to its column; identifiers, addresses, currencies,
amounts and times that do not fit are rejected with a reason naming the field (LimitError, a ValueError:
the intake keeps the delivery as rejected, visible, and never retries it).
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String

#: Fields cut to their column's length rather than rejected: text nobody joins on.
TRUNCATED = frozenset(("first_name", "last_name", "name", "source", "device", "locale"))
#: Money columns are NUMERIC(18, 4).
MAX_MONEY = Decimal(10) ** 14
#: INTEGER columns (quantities, stock, order counts).
MAX_INT = 2**31 - 1
#: Times a platform may honestly send: anything else is a bug or an attack, and would overflow date math.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class LimitError(ValueError):
    """A value that no column can hold; the message names the field, never the value."""


@functools.cache
def column_lengths() -> dict[str, int]:
    """Field name → the shortest String column of that name in the schema."""
    from recovery.storage import tables as t

    lengths: dict[str, int] = {}
    for table in t.Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, String) and column.type.length:
                lengths[column.name] = min(lengths.get(column.name, column.type.length), column.type.length)
    return lengths


def checked(event: Any) -> Any:
    """`event` with free text truncated to its columns; LimitError for any value no column can hold."""
    return _value(event, type(event).__name__)


def _value(value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            new = _field(f.name, old, f"{path}.{f.name}")
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, tuple):
        items = [_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise LimitError(f"{path}: number out of range")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value) >= MAX_MONEY:
            raise LimitError(f"{path}: amount out of range")
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            if not EARLIEST <= aware <= LATEST:
                raise LimitError(f"{path}: time out of range")
        except OverflowError:
            raise LimitError(f"{path}: time out of range") from None
        return value
    return value


def _field(name: str, value: Any, path: str) -> Any:
    if isinstance(value, str):
        limit = column_lengths().get(name)
        if limit is not None and len(value) > limit:
            if name in TRUNCATED:
                return value[:limit]
            raise LimitError(f"{path}: longer than {limit} characters")
        return value
    return _value(value, path)
