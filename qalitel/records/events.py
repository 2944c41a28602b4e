"""What the record services tell other parts of the app, without importing them: a module
that cares (notifications) registers a listener; the services call :func:`assigned`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qalitel.users.models import User

AssignmentListener = Callable[[User, Any], None]
_assignment: list[AssignmentListener] = []


def on_assignment(listener: AssignmentListener) -> AssignmentListener:
    """Register ``listener(actor, action_or_record)``, called once an owner or an assignee
    was set (registered once: a second registration of the same function is ignored)."""
    if listener not in _assignment:
        _assignment.append(listener)
    return listener


def assigned(actor: User, target: Any) -> None:
    """An action's owner or a record's assignee was just set (flushed) by ``actor``."""
    for listener in _assignment:
        listener(actor, target)
