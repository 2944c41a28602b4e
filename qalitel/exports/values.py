"""Column values as JSON and back: dates and times ISO 8601 (UTC), enums by value, binary as
base64, decimals as strings. Decoding is driven by the column's type, so a row read back is
what the database held, whichever backend wrote it."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
from typing import Any

from sqlalchemy import Column, types


def to_json(value: Any) -> Any:
    """One column value as a JSON value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # SQLite hands back the UTC time it stored, without zone
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict | list):
        return value
    raise TypeError(f"no JSON form for a {type(value).__name__}")


def from_json(column: Column[Any], value: Any) -> Any:
    """The value to insert into ``column`` for its JSON form; ValueError when it cannot be."""
    if value is None:
        return None
    kind = column.type
    try:
        if isinstance(kind, types.DateTime):
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
        if isinstance(kind, types.Date):
            return dt.date.fromisoformat(value)
        if isinstance(kind, types.Time):
            return dt.time.fromisoformat(value)
        if isinstance(kind, types.Enum) and kind.enum_class is not None:
            return kind.enum_class(value)
        if isinstance(kind, types.LargeBinary):
            return base64.b64decode(value, validate=True)
        if (isinstance(kind, types.Numeric) and not isinstance(kind, types.Float)
                or getattr(kind, "exact_decimal", False)):  # records' FixedDecimal
            return decimal.Decimal(value)
        if isinstance(kind, types.Boolean) and not isinstance(value, bool):
            raise ValueError("not a boolean")
        if isinstance(kind, types.Integer) and (isinstance(value, bool)
                                                or not isinstance(value, int)):
            raise ValueError("not an integer")
        if isinstance(kind, types.String) and not isinstance(value, str):
            raise ValueError("not a string")
    except (TypeError, ValueError, decimal.InvalidOperation) as exc:
        raise ValueError(f"column {column.table.name}.{column.name}: bad value "
                         f"{str(value)[:40]!r} ({exc})") from exc
    return value
