"""CSV exports of the lists as the reader's spreadsheet opens them: UTF-8 with a BOM, ";"
between cells in French (French Excel expects it), "," in English; dates, yes/no and the
labels of codes in the reader's language; cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from flask import Response
from flask_babel import get_locale
from flask_babel import gettext as _

from core import dates
from qalitel.users.labels import translate_pseudonyms

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_MAX = 50000
SEPARATORS = {"fr": ";"}


def separator() -> str:
    locale = get_locale()
    return SEPARATORS.get(locale.language if locale is not None else "fr", ",")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run (text starting like a formula gets a quote), the
    pseudonyms of erased accounts in the reader's language as on pages."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return dates.datetime_text(value)
    if isinstance(value, date):
        return dates.date_text(value)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
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
