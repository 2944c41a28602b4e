"""Small web helpers any layer may use: the generic administrator check.

``admin_required`` needs a signed-in user whose ``is_admin`` is true (the app's user model
provides it); it knows nothing else of the app.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required


def is_admin() -> bool:
    """Whether the current user is a signed-in administrator."""
    return bool(current_user.is_authenticated and getattr(current_user, "is_admin", False))


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Sign-in first (the login manager's redirect), then 403 for anyone but an admin."""
    @wraps(view)
    @login_required
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            abort(403)
        return view(*args, **kwargs)

    return guarded
