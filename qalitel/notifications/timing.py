"""When and to whom each kind goes: the tenant's settings, then the user's own preferences."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from core import clock, dates
from qalitel.notifications.models import (
    DIGEST_DEFAULT,
    DUE_SOON_DEFAULT,
    Kind,
    NotificationPreference,
    NotificationSettings,
)
from tenants.context import tdb

FLAGS = tuple(k.value for k in Kind)


def tenant_settings() -> NotificationSettings:
    """The stored row, or the defaults (not added to the session)."""
    row = tdb.get(NotificationSettings, 1)
    if row is None:
        row = NotificationSettings(id=1, due_soon_days=DUE_SOON_DEFAULT,
                                   digest_weekday=DIGEST_DEFAULT,
                                   **dict.fromkeys(FLAGS, True))
    return row


def default_preference(user_id: int) -> NotificationPreference:
    """Every kind on, with the tenant's due-soon days (not added to the session)."""
    return NotificationPreference(user_id=user_id, due_soon_days=None,
                                  **dict.fromkeys(FLAGS, True))


def user_preference(user_id: int) -> NotificationPreference:
    """The user's row, or :func:`default_preference`."""
    return tdb.get(NotificationPreference, user_id) or default_preference(user_id)


def all_preferences() -> dict[int, NotificationPreference]:
    """Every stored preference by user id (a run over many users reads them once)."""
    return {p.user_id: p for p in tdb.execute(select(NotificationPreference)).scalars()}


def wanted(kind: str, user_id: int, tenant: NotificationSettings | None = None,
           preference: NotificationPreference | None = None) -> bool:
    """Whether the tenant sends ``kind`` and the user did not turn it off."""
    tenant = tenant or tenant_settings()
    preference = preference or user_preference(user_id)
    return bool(getattr(tenant, kind)) and bool(getattr(preference, kind))


def due_soon_days(user_id: int, tenant: NotificationSettings | None = None,
                  preference: NotificationPreference | None = None) -> int:
    own = (preference or user_preference(user_id)).due_soon_days
    return own if own is not None else (tenant or tenant_settings()).due_soon_days


def local_now() -> datetime:
    """Now where the tenants are (``QALITEL_DEFAULT_TIMEZONE``): a due date, a week and the
    digest day are counted there."""
    return dates.local(clock.now(), dates.default_zone())


def today() -> date:
    return dates.today()


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
