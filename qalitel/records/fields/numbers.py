"""How decimals are written in forms, the history and CSV files: plainly, ``.`` as the
decimal separator (``12.5``, ``100``; ``1234.50`` with two places)."""

from __future__ import annotations

from decimal import Decimal


def plain_number(value: Decimal | None, places: int | None = None) -> str:
    if value is None:
        return ""
    if places is not None:
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")
    return format(value.normalize(), "f")
