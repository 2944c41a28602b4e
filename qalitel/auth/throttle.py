"""Throttling of sign-in and password attempts with Flask-Limiter.

Views declare their rules with :func:`throttled`; each app builds its own ``Limiter`` (storage
``settings.ratelimit_storage_uri``: memory by default, Redis supported) and wraps the declared
views once, in :func:`init_app`. One limiter per app keeps apps built in one process (tests,
tools) from sharing counters, storage or key prefix.

Limits are app config strings (``"5 per minute;20 per hour"``), overridable through
``Settings.extra``. Rules marked ``failures_only`` test the limit before the view and count a
hit only when the answer is a failure (status 401/400), so a user who signs in fine is never
slowed down, while guessing is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter

from core import config
from tenants.context import current_tenant, has_tenant

DEFAULT_LIMITS = {
    "LOGIN_LIMIT_PER_ACCOUNT": "5 per minute;20 per hour",
    "LOGIN_LIMIT_PER_ADDRESS": "20 per minute;200 per hour",
    "RESET_LIMIT_PER_ACCOUNT": "3 per hour",
    "RESET_LIMIT_PER_ADDRESS": "5 per minute;30 per hour",
    "RESET_TOKEN_LIMIT_PER_ADDRESS": "10 per minute;60 per hour",
    "PASSWORD_LIMIT_PER_USER": "5 per 15 minutes",
}
FAILURE_STATUSES = frozenset({400, 401})


def by_address() -> str:
    """The client address (put ``ProxyFix`` in front when behind a reverse proxy)."""
    return "addr:" + (request.remote_addr or "unknown")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def by_account() -> str:
    """The account named in the form (tenant + email), whether it exists or not."""
    email = (request.form.get("email") or "")[:320].strip().lower()
    tenant = current_tenant().uid if has_tenant() else "-"
    return f"acct:{tenant}:{_digest(email)}"


def by_user() -> str:
    """The signed-in user (password change)."""
    from flask_login import current_user

    tenant = current_tenant().uid if has_tenant() else "-"
    who = current_user.id if current_user.is_authenticated else "anonymous"
    return f"user:{tenant}:{who}"


@dataclass(frozen=True)
class Rule:
    config_key: str
    key: Callable[[], str]
    failures_only: bool = False


_DECLARED: dict[str, tuple[Callable[..., Any], tuple[Rule, ...]]] = {}


def _name(view: Callable[..., Any]) -> str:
    return f"{view.__module__}.{view.__qualname__}"


def throttled(*rules: Rule) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit the POSTs of a view by ``rules`` (enforced by the app's limiter)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        name = _name(view)
        _DECLARED[name] = (view, rules)

        @wraps(view)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            guarded = current_app.extensions["qalitel_throttle"].get(name, view)
            return guarded(*args, **kwargs)

        return dispatch

    return decorate


def _failed(response: Any) -> bool:
    return response.status_code in FAILURE_STATUSES


def _limit_of(key: str) -> Callable[[], str]:
    return lambda: current_app.config[key]


def init_app(app: Flask) -> None:
    settings = app.extensions[config.EXTENSION]
    for key, value in DEFAULT_LIMITS.items():
        app.config.setdefault(key, value)
    limiter = Limiter(
        key_func=by_address,
        storage_uri=settings.ratelimit_storage_uri,
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "qalitel",
        strategy=app.config.get("RATELIMIT_STRATEGY", "fixed-window"),
        headers_enabled=True,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.init_app(app)
    # Views declared in modules imported later than this call would not be throttled:
    # create_app imports every view module (qalitel.views) before calling it.

    guarded: dict[str, Callable[..., Any]] = {}
    for name, (view, rules) in _DECLARED.items():
        wrapped = view
        for rule in rules:
            wrapped = limiter.limit(
                _limit_of(rule.config_key), key_func=rule.key, methods=["POST"],
                scope=rule.config_key,
                deduct_when=_failed if rule.failures_only else None)(wrapped)
        guarded[name] = wrapped
    app.extensions["qalitel_limiter"] = limiter
    app.extensions["qalitel_throttle"] = guarded
