"""The one throttle of the platform: counters of attempts in a shared store (``limits``).

Every throttled action (tenant sign-in and password reset, password change, staff console
sign-in) names *charges*: a limit (``"5 per minute"``) on a key (``"acct-addr:…"``). The
counters live in ``settings.ratelimit_storage_uri``:

* ``memory://`` (the default) counts inside one process. It is correct only when one process
  serves: ``gunicorn.conf.py`` refuses to start several workers on it (see
  :func:`worker_rule`), since each worker would otherwise grant the full limit again.
* ``redis://`` (also ``rediss://``, ``redis+unix://``, ``redis+sentinel://``,
  ``redis+cluster://``) is shared by every worker and host, with atomic increments.

Any other scheme is refused at start-up (allow-list). Keys are prefixed with
``settings.ratelimit_key_prefix`` so several installations can share one Redis.

Counting is *reserve first*: :meth:`Throttle.acquire` checks every charge, then takes one
unit of each (an atomic increment), and gives the units back if any charge was over its limit
in the meantime. So concurrent requests can never exceed a limit, whichever worker answers.
An action that counts only failures (sign-in) gives its units back with
:meth:`Reservation.release` once it succeeded. Windows are fixed windows.

When the store cannot be reached the throttle fails closed: :class:`ThrottleUnavailable`
(HTTP 503), never an unthrottled attempt.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Flask, current_app, render_template, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from core import config, validation

log = logging.getLogger(__name__)

SHARED_SCHEMES = frozenset({"redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"})
LOCAL_SCHEMES = frozenset({"memory"})
EXTENSION = "qalitel_throttle_store"
PREFIX_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class ThrottleConfigError(config.ConfigError):
    """A storage URI or limit string the throttle cannot use."""


class ThrottleUnavailable(ServiceUnavailable):
    """The counters cannot be read or written: the attempt is refused (fail closed)."""

    description = "The attempt counters are unavailable; try again in a moment."


class Throttled(TooManyRequests):
    """Over a limit; ``retry_after`` seconds until the first blocking window ends."""


def scheme_of(storage_uri: str) -> str:
    return urlsplit(storage_uri.strip()).scheme.lower()


def check_storage_uri(storage_uri: str) -> str:
    """The URI if its scheme is allowed (memory or Redis), else ThrottleConfigError."""
    scheme = scheme_of(storage_uri)
    if scheme not in SHARED_SCHEMES | LOCAL_SCHEMES:
        raise ThrottleConfigError(
            f"QALITEL_RATELIMIT_STORAGE_URI={storage_uri!r}: use memory:// (one process) or "
            "redis://host:port/db (shared by every worker)")
    return storage_uri.strip()


def is_shared(storage_uri: str) -> bool:
    """True when the counters are shared by every process (Redis)."""
    return scheme_of(storage_uri) in SHARED_SCHEMES


def worker_rule(storage_uri: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve with this storage, or None when they can."""
    check_storage_uri(storage_uri)
    if workers > 1 and not is_shared(storage_uri):
        return (f"{workers} workers with QALITEL_RATELIMIT_STORAGE_URI={storage_uri} would "
                f"each count sign-in attempts on their own, allowing {workers} times the "
                "documented attempts. Serve with one worker (threads serve requests in "
                "parallel: gunicorn -c gunicorn.conf.py wsgi:app), or set "
                "QALITEL_RATELIMIT_STORAGE_URI=redis://host:6379/0 to run several workers.")
    return None


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


def parse_limits(text: str) -> list[RateLimitItem]:
    """``"5 per minute;20 per hour"`` → limit items; ThrottleConfigError if unreadable."""
    try:
        items = list(_parsed(text))
    except (ValueError, TypeError) as exc:
        raise ThrottleConfigError(f"invalid limit {text!r}: {exc}") from None
    if not items:
        raise ThrottleConfigError(f"invalid limit {text!r}")
    return items


@dataclass(frozen=True)
class Charge:
    """One counter: ``limit`` on ``key`` within ``scope`` (the rule's name)."""

    scope: str
    key: str
    limit: RateLimitItem


def charges(scope: str, key: str, limits_text: str) -> list[Charge]:
    return [Charge(scope, key, item) for item in parse_limits(limits_text)]


@dataclass
class Reservation:
    """Units taken by :meth:`Throttle.acquire`; :meth:`release` gives them back once."""

    throttle: Throttle
    taken: list[Charge] = field(default_factory=list)

    def release(self, only: Iterable[Charge] | None = None) -> None:
        keep = set(only) if only is not None else None
        given = [c for c in self.taken if keep is None or c in keep]
        self.throttle._give_back(given)
        self.taken = [c for c in self.taken if c not in given]


class Throttle:
    """Counters in one storage, keys under one prefix (one per app)."""

    def __init__(self, storage_uri: str, prefix: str) -> None:
        uri = check_storage_uri(storage_uri)
        if not PREFIX_RE.fullmatch(prefix):
            raise ThrottleConfigError(f"QALITEL_RATELIMIT_KEY_PREFIX={prefix!r}: 1 to 64 "
                                      "letters, digits or _ . : -")
        options = {"key_prefix": prefix} if is_shared(uri) else {}
        self.storage: Storage = storage_from_string(uri, wrap_exceptions=True, **options)
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.prefix = prefix

    def _ids(self, charge: Charge) -> tuple[str, ...]:
        return (self.prefix, charge.scope, charge.key)

    def _storage_call(self, what: str, call, *args):
        try:
            return call(*args)
        except (StorageError, ConnectionError, OSError) as exc:
            log.error("throttle storage unavailable while %s: %s", what, exc)
            raise ThrottleUnavailable() from None

    def retry_after(self, blocked: Sequence[Charge]) -> int:
        """Seconds until every blocking window has ended (at least 1)."""
        now = time.time()
        ends = [self._storage_call("reading a window", self.limiter.get_window_stats,
                                   c.limit, *self._ids(c)).reset_time for c in blocked]
        return max(1, math.ceil(max(ends, default=now + 1) - now))

    def over(self, wanted: Sequence[Charge]) -> list[Charge]:
        """The charges whose limit is already reached (nothing is counted)."""
        return [c for c in wanted
                if not self._storage_call("testing", self.limiter.test, c.limit, *self._ids(c))]

    def check(self, wanted: Sequence[Charge]) -> None:
        """Throttled (429) when any charge is at its limit; counts nothing."""
        blocked = self.over(wanted)
        if blocked:
            raise Throttled(retry_after=self.retry_after(blocked))

    def hit(self, wanted: Sequence[Charge]) -> None:
        """Count one unit on every charge (whatever the limits say)."""
        for charge in wanted:
            self._storage_call("counting", self.limiter.hit, charge.limit, *self._ids(charge))

    def acquire(self, wanted: Sequence[Charge]) -> Reservation:
        """Take one unit of every charge, or none and raise Throttled (429).

        A refused attempt gives back what it took, so hammering a blocked key never uses up
        the budget of the other keys (an attacker stuck on one account and address does not
        eat into the account's budget for other addresses).
        """
        self.check(wanted)
        reservation = Reservation(self)
        refused = []
        try:
            for charge in wanted:
                ok = self._storage_call("counting", self.limiter.hit, charge.limit,
                                        *self._ids(charge))
                reservation.taken.append(charge)
                if not ok:
                    refused.append(charge)
        except ThrottleUnavailable:
            reservation.release()
            raise
        if refused:
            retry = self.retry_after(refused)
            reservation.release()
            raise Throttled(retry_after=retry)
        return reservation

    def _give_back(self, given: Sequence[Charge]) -> None:
        """Decrement each counter. Should its window have ended meanwhile, the new window
        starts one below zero: one more attempt, for whoever just got the password right."""
        for charge in given:
            key = charge.limit.key_for(*self._ids(charge))
            self._storage_call("giving back", self.storage.incr, key,
                               charge.limit.get_expiry(), -1)


def of_app(app: Flask | None = None) -> Throttle:
    """The throttle of ``app`` (the current app by default), made from its settings once."""
    app = app or current_app._get_current_object()
    found = app.extensions.get(EXTENSION)
    if found is None:
        settings = app.extensions[config.EXTENSION]
        found = Throttle(settings.ratelimit_storage_uri, settings.ratelimit_key_prefix)
        app.extensions[EXTENSION] = found
    return found


def account_key(raw_email: str) -> str:
    """The account an attempt names, spelled as the account lookup spells it (e-mail
    normalised as ``core.validation`` does), so another spelling of one address (case,
    full-width letters, IDNA forms) counts against the same limits."""
    return validation.email_or_none(raw_email) or raw_email[:320].strip().lower()


def address_key(raw_address: str | None) -> str:
    """The client an attempt comes from: an IPv4 address, or the /64 of an IPv6 one (one
    host usually holds a whole /64, so single IPv6 addresses are free to vary)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(raw_address or "")
    except ValueError:
        return raw_address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def request_address() -> str:
    """The client address of the current request (put ``ProxyFix`` in front when behind a
    reverse proxy), an IPv6 one by its /64."""
    return address_key(request.remote_addr)


def too_many(retry_after: int):
    """The 429 page, with ``Retry-After``."""
    response = current_app.make_response((render_template("errors/429.html"), 429))
    response.headers["Retry-After"] = str(retry_after)
    return response
