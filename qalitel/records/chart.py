"""The dashboard's bar chart (records per month), drawn as SVG by the server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass
class MonthBar:
    year: int
    month: int
    count: int
    x: float = 0
    y: float = 0
    height: float = 0

    @property
    def value(self) -> int:
        return self.count


def last_months(today: date, months: int = 12) -> list[tuple[int, int]]:
    """(year, month) of the last ``months`` months, oldest first, this month last."""
    keys = []
    year, month = today.year, today.month
    for _ in range(months):
        keys.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    keys.reverse()
    return keys


def month_bars(keys: list[tuple[int, int]], counts: dict[tuple[int, int], int]) -> list[MonthBar]:
    return [MonthBar(year, month, counts.get((year, month), 0)) for year, month in keys]


def layout_chart(bars: list[Any], width: int = 600, height: int = 200,
                 bottom: int = 24, top: int = 16) -> dict[str, Any]:
    """Bar geometry for a server-drawn SVG chart of bars with a ``value`` (any number)."""
    peak = max((b.value for b in bars), default=0)
    slot = width / max(len(bars), 1)
    room = height - bottom - top
    for i, bar in enumerate(bars):
        bar.height = round(room * bar.value / peak, 1) if peak else 0
        bar.x = round(i * slot + slot * 0.15, 1)
        bar.y = round(top + room - bar.height, 1)
    return {"bars": bars, "width": width, "height": height, "bar_width": round(slot * 0.7, 1),
            "baseline": height - bottom, "peak": peak, "slot": slot}
