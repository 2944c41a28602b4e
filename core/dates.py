"""Dates and times as people read them: one date format (CLDR *medium*: "1 déc. 2026",
"Dec 1, 2026") and one date-and-time format (medium date, short time: "1 déc. 2026, 08:58",
"Dec 1, 2026, 8:58 AM"), in the current locale and time zone (Flask-Babel's selectors).

Stored datetimes are UTC (SQLite hands them back naive). What machines read stays UTC ISO
(:func:`iso_utc`, the ``datetime`` attribute of :func:`time_tag`). Mail is written in the
recipient's time zone: pass ``tz=default_zone()`` (people choose theirs in a cookie that
only their own browser sends).
"""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo
from functools import lru_cache

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from flask import has_app_context
from flask_babel import get_locale, get_timezone
from markupsafe import Markup, escape

from core import clock
from core.clock import as_utc

DATE_FORMAT = "medium"
TIME_FORMAT = "short"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_FALLBACK = Locale.parse("fr")


def _locale() -> Locale:
    return (get_locale() if has_app_context() else None) or _FALLBACK


def default_zone() -> tzinfo:
    """The installation's time zone (``QALITEL_DEFAULT_TIMEZONE``): the one of mail."""
    import pytz

    from core import config

    return pytz.timezone(config.settings().default_timezone)


def today() -> date:
    """Today where the tenants are (``QALITEL_DEFAULT_TIMEZONE``, by :func:`core.clock.now`):
    the one day pages, lists and mail count due dates from (UTC outside an app)."""
    if not has_app_context():
        return clock.now().date()
    return local(clock.now(), default_zone()).date()


def _zone(tz: tzinfo | None) -> tzinfo:
    if tz is not None:
        return tz
    zone = get_timezone() if has_app_context() else None
    return zone if zone is not None else default_zone()


def local(value: datetime, tz: tzinfo | None = None) -> datetime:
    """A stored (UTC) datetime in the reader's time zone."""
    zone = _zone(tz)
    moved = as_utc(value).astimezone(zone)
    normalize = getattr(zone, "normalize", None)
    return normalize(moved) if normalize else moved


def date_text(value: date | datetime | None, tz: tzinfo | None = None) -> str:
    """A day (a datetime: its day where the reader is); ``""`` for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value, tz).date()
    return _day_text(value, _locale())


@lru_cache(maxsize=4096)
def _day_text(day: date, locale: Locale) -> str:
    """Babel's text of ``day`` in ``locale``, kept per process: a list shows a date per row
    and the text depends on nothing else."""
    return format_date(day, DATE_FORMAT, locale=locale)


def datetime_text(value: datetime | None, tz: tzinfo | None = None) -> str:
    """A moment, in the reader's time zone; ``""`` for None."""
    if value is None:
        return ""
    moment = local(value, tz)
    locale = _locale()
    pattern = str(get_datetime_format(DATE_FORMAT, locale=locale))
    return (pattern.replace("{1}", format_date(moment.date(), DATE_FORMAT, locale=locale))
            .replace("{0}", format_time(moment.timetz(), TIME_FORMAT, locale=locale)))


def month_text(year: int, month: int, short: bool = False) -> str:
    """A month as people read it: "déc. 2026" / "Dec 2026" (short: "déc." / "Dec")."""
    from babel.dates import format_skeleton

    return format_skeleton("MMM" if short else "yMMM", date(year, month, 1), locale=_locale())


def from_iso(value: str) -> datetime | None:
    """A datetime written as ISO text (the access log's), or None when it is not one."""
    if not isinstance(value, str) or not _ISO_MOMENT.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def iso_text(value: object) -> object:
    """A day or moment stored as ISO text (history of a date field, details of the access
    log) as :func:`date_text` / :func:`datetime_text`; anything else unchanged."""
    if not isinstance(value, str):
        return value
    if _ISO_DATE.fullmatch(value):
        try:
            return date_text(date.fromisoformat(value))
        except ValueError:
            return value
    moment = from_iso(value)
    return datetime_text(moment) if moment is not None else value


def iso_utc(value: datetime) -> str:
    """A stored datetime as machines read it: ``2026-12-01T07:58:00Z``."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_tag(value: datetime | date | None, tz: tzinfo | None = None) -> Markup:
    """``<time datetime="UTC ISO">local text</time>`` (a day: its ISO date and text)."""
    if value is None:
        return Markup("")
    if isinstance(value, datetime):
        machine, text = iso_utc(value), datetime_text(value, tz)
    else:
        machine, text = value.isoformat(), date_text(value)
    return Markup('<time datetime="{}">{}</time>').format(machine, escape(text))
