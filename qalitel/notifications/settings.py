"""Saving the two forms: only what differs is written, so a form saved untouched changes
nothing (no row is created for values equal to the defaults)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from core import clock
from qalitel.notifications import timing
from qalitel.users.models import User
from tenants.context import tdb

TENANT_FIELDS = ("due_soon_days", "digest_weekday", *timing.FLAGS)
USER_FIELDS = ("due_soon_days", *timing.FLAGS)


def _apply(row: Any, values: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    changed = [f for f in fields if getattr(row, f) != values[f]]
    for name in changed:
        setattr(row, name, values[name])
    return changed


def _insert_once(row: Any) -> bool:
    """Insert ``row`` in a savepoint; False when another request inserted its key first."""
    try:
        with tdb.begin_nested():
            tdb.add(row)
            tdb.flush()
    except IntegrityError:
        return False
    return True


def _save(read: Callable[[], Any], values: dict[str, Any], fields: tuple[str, ...],
          stamp: Callable[[Any], None]) -> list[str]:
    """Write ``values`` over the row ``read`` gives; the names of the fields changed. A
    first save racing another (a double submit) writes over the row the other inserted."""
    row = read()
    changed = _apply(row, values, fields)
    if not changed:
        return changed
    stamp(row)
    if row in tdb:
        tdb.flush()
        return changed
    if _insert_once(row):
        return changed
    row = read()
    changed = _apply(row, values, fields)
    if changed:
        stamp(row)
        tdb.flush()
    return changed


def save_tenant_settings(actor: User, values: dict[str, Any]) -> list[str]:
    """Write the tenant's settings (client admin); the names of the fields changed."""
    def stamp(row: Any) -> None:
        row.updated_by_id, row.updated_at = actor.id, clock.now()

    return _save(timing.tenant_settings, values, TENANT_FIELDS, stamp)


def save_user_preference(user: User, values: dict[str, Any]) -> list[str]:
    return _save(lambda: timing.user_preference(user.id), values, USER_FIELDS,
                 lambda _row: None)

