"""Saving the two forms: only what differs is written, so a form saved untouched changes
nothing (no row is created for values equal to the defaults)."""

from __future__ import annotations

from typing import Any

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


def save_tenant_settings(actor: User, values: dict[str, Any]) -> list[str]:
    """Write the tenant's settings (client admin); the names of the fields changed."""
    row = timing.tenant_settings()
    changed = _apply(row, values, TENANT_FIELDS)
    if changed:
        row.updated_by_id, row.updated_at = actor.id, clock.now()
        if row not in tdb:
            tdb.add(row)
        tdb.flush()
    return changed


def save_user_preference(user: User, values: dict[str, Any]) -> list[str]:
    row = timing.user_preference(user.id)
    changed = _apply(row, values, USER_FIELDS)
    if changed:
        if row not in tdb:
            tdb.add(row)
        tdb.flush()
    return changed

