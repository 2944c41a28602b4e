"""CSV exports of the lists as the reader's spreadsheet opens them: UTF-8 with a BOM, ";"
between cells in French (French Excel expects it), "," in English; numbers with the
locale's decimal mark and no grouping, dates as the spreadsheet reads them (31/12/2026 in
French, 2026-12-31 in English), yes/no and the labels of codes in the reader's language;
cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.numbers import get_decimal_symbol
from flask import Response
from flask_babel import get_locale
from flask_babel import gettext as _

from core import dates
from qalitel.users.labels import translate_pseudonyms

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_MAX = 50000
SEPARATORS = {"fr": ";"}
# What a spreadsheet of each language reads as a date (and a date and time) by itself.
DATE_PATTERNS = {"fr": ("%d/%m/%Y", "%d/%m/%Y %H:%M")}
ISO_PATTERNS = ("%Y-%m-%d", "%Y-%m-%d %H:%M")


def _language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "fr"


def separator() -> str:
    return SEPARATORS.get(_language(), ",")


def number_cell(value: Decimal | int | float | None, places: int | None = None) -> str:
    """A number as the reader's spreadsheet reads it: the locale's decimal mark, no grouping
    ("1234,50" in French, "1234.50" in English); ``places`` fixes the decimals."""
    if value is None:
        return ""
    number = Decimal(value)
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places))
    text = format(number if places is not None else number.normalize(), "f")
    return text.replace(".", get_decimal_symbol(_language()))


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run (text starting like a formula gets a quote), the
    pseudonyms of erased accounts in the reader's language as on pages."""
    if value is None:
        return ""
    day, moment = DATE_PATTERNS.get(_language(), ISO_PATTERNS)
    if isinstance(value, datetime):
        return dates.local(value).strftime(moment)
    if isinstance(value, date):
        return value.strftime(day)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, Decimal | float):
        return number_cell(value)
    value = translate_pseudonyms(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator(), lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> Response:
    """An attachment (UTF-8 with a BOM, so spreadsheets read accents), never cached."""
    response = Response("\ufeff" + to_csv(header, rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
