"""What the app derives from a field an engineer changed through the door.

The app registers, with :func:`on_field_changed`, a function called once a change made by
:meth:`maintenance.access.MaintenanceSession.update_field` is committed, with the tenant's
row, the table, the record's id and the column; it recomputes what it derives from that field
(records' search text) through its own tenant connection, not the grant's. A hook that fails
is logged: the change itself is saved and logged already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

FieldChanged = Callable[[Any, str, Any, str], object]
hooks: list[FieldChanged] = []


def on_field_changed(hook: FieldChanged) -> FieldChanged:
    """Register ``hook`` once (usable as a decorator)."""
    if hook not in hooks:
        hooks.append(hook)
    return hook


def field_changed(tenant: Any, table: str, record_id: Any, column: str) -> None:
    for hook in list(hooks):
        try:
            hook(tenant, table, record_id, column)
        except Exception:
            log.exception("after-change hook failed on %s.%s", table, column)
