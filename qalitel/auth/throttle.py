"""Throttling of sign-in and password attempts at a tenant, on the platform's one throttle
(:mod:`core.throttle`: counters in memory for one process, in Redis for several).

Views declare their rules with :func:`throttled`; a rule names an app config key holding its
limits (``"5 per minute;20 per hour"``, overridable through ``Settings.extra``) and the key
it counts by. Only POSTs are counted. Every rule's unit is reserved before the view runs, so
concurrent attempts cannot exceed a limit; rules marked ``failures_only`` give their unit back
when the answer is not a failure (status 401/400), so a user who signs in fine is never
slowed down, while guessing is.

Sign-in is limited three ways (see :data:`DEFAULT_LIMITS`):

* per account *and* address — tight: the person mistyping their password, or an attacker on
  one address, waits after a few failures;
* per account, from any address — looser than what one address can ever send, so an
  attacker on one address cannot lock the account out for anybody else, while a
  distributed attack on one account is still capped;
* per address, whatever the account — against one address trying many accounts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, current_app, request

from core import throttle as store
from tenants.context import current_tenant, has_tenant

DEFAULT_LIMITS = {
    "LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "5 per minute;20 per hour",
    "LOGIN_LIMIT_PER_ACCOUNT": "50 per hour",
    "LOGIN_LIMIT_PER_ADDRESS": "20 per minute;200 per hour",
    "RESET_LIMIT_PER_ACCOUNT_ADDRESS": "3 per hour",
    "RESET_LIMIT_PER_ACCOUNT": "10 per hour",
    "RESET_LIMIT_PER_ADDRESS": "5 per minute;30 per hour",
    "RESET_TOKEN_LIMIT_PER_ADDRESS": "10 per minute;60 per hour",
    "PASSWORD_LIMIT_PER_USER": "5 per 15 minutes",
}
FAILURE_STATUSES = frozenset({400, 401})


def by_address() -> str:
    return "addr:" + store.request_address()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def _account() -> str:
    email = store.account_key(request.form.get("email") or "")
    tenant = current_tenant().uid if has_tenant() else "-"
    return f"{tenant}:{_digest(email)}"


def by_account() -> str:
    """The account named in the form (tenant + email), whether it exists or not."""
    return "acct:" + _account()


def by_account_and_address() -> str:
    """The account named in the form, from this client address."""
    return f"acct-addr:{_account()}:{_digest(store.request_address())}"


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


def _failed(response: Any) -> bool:
    return response.status_code in FAILURE_STATUSES


def throttled(*rules: Rule) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limit the POSTs of a view by ``rules``."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if request.method != "POST":
                return view(*args, **kwargs)
            wanted = [(rule, charge) for rule in rules
                      for charge in store.charges(rule.config_key, rule.key(),
                                                  current_app.config[rule.config_key])]
            try:
                reservation = store.of_app().acquire([charge for _, charge in wanted])
            except store.Throttled as exc:
                return store.too_many(int(exc.retry_after or 1))
            response = current_app.make_response(view(*args, **kwargs))
            if not _failed(response):
                reservation.release(charge for rule, charge in wanted if rule.failures_only)
            return response

        return guarded

    return decorate


def allowed(rule: Rule) -> bool:
    """Take one unit of ``rule`` for this request; False (nothing taken) when it is spent.
    For limits that must not answer 429, where a refusal would hand a stranger a lever."""
    charges = store.charges(rule.config_key, rule.key(), current_app.config[rule.config_key])
    try:
        store.of_app().acquire(charges)
    except store.Throttled:
        return False
    return True


def init_app(app: Flask) -> None:
    """Default limits into the config; the app's throttle made now, so a bad storage URI
    or limit stops the start-up rather than the first sign-in."""
    for key, value in DEFAULT_LIMITS.items():
        app.config.setdefault(key, value)
        store.parse_limits(app.config[key])
    store.of_app(app)
