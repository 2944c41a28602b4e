"""The one clock maintenance access reads: request deadlines, grant windows, log timestamps.

``now()`` is the real UTC time unless the current app was given another clock with
``set_clock(app, callable)`` (tests move time forward instead of sleeping)::

    clock = ManualClock(datetime(2030, 1, 1, 9, tzinfo=UTC))
    set_clock(app, clock)
    clock.advance(hours=5)
    set_clock(app, None)   # back to the real time
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import overload

from flask import Flask, current_app, has_app_context

EXTENSION = "qalitel_clock"

Clock = Callable[[], datetime]


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored datetime as UTC: SQLite hands them back naive, and every stored datetime is
    UTC; None stays None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the clock returned a naive datetime: give it a timezone")
    return value.astimezone(UTC)


def now() -> datetime:
    """The current time, timezone-aware in UTC (the app's clock when one is set)."""
    if has_app_context():
        clock: Clock | None = current_app.extensions.get(EXTENSION)
        if clock is not None:
            return _aware_utc(clock())
    return datetime.now(UTC)


def set_clock(app: Flask, clock: Clock | None) -> None:
    """Make ``clock`` (a callable returning an aware datetime) the app's time; None resets."""
    if clock is None:
        app.extensions.pop(EXTENSION, None)
    else:
        app.extensions[EXTENSION] = clock


class ManualClock:
    """A clock that stands still until moved: ``advance(hours=1)``, ``set(dt)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware_utc(start) if start is not None else datetime.now(UTC)

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**units)``; returns the new time."""
        step = delta if delta is not None else timedelta(**units)
        with self._lock:
            self._now += step
            return self._now

    def set(self, value: datetime) -> None:
        with self._lock:
            self._now = _aware_utc(value)
