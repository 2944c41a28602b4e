"""What the maintenance door hands the console: pages and records as display text, and field
values converted from the text an engineer typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from core.pagination import Page
from maintenance.allow_list import MASK, SENSITIVE_RE


@dataclass(kw_only=True)
class TablePage(Page):
    """A :class:`core.pagination.Page` of one tenant table: the rows as display text, with the
    column names and each row's primary-key value (None without a single-column key)."""

    table: str
    columns: list[str]
    ids: list[str | None]
    primary_key: str | None


@dataclass
class Record:
    table: str
    record_id: str
    primary_key: str
    values: list[tuple[str, str | None]]
    editable: list[str] = field(default_factory=list)


def display(column: str, value: Any) -> str | None:
    if value is None:
        return None
    if SENSITIVE_RE.search(column):
        return MASK
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def convert(column, value: str) -> Any:
    if value == "" and column.nullable:
        return None
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return value
    if kind is bool:
        lowered = value.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError("expected true or false")
        return lowered in ("1", "true", "yes", "on")
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    return value
