"""Ping a pooled connection at checkout only when it sat idle in the pool for a while.

SQLAlchemy's ``pool_pre_ping`` sends a ``SELECT 1`` at every checkout: a round trip per pool
per request, although a connection checked in a few milliseconds ago is almost always alive.
:func:`ping_when_idle` pings only a connection idle longer than :data:`IDLE_PING_SECONDS`
(SQLAlchemy's documented custom checkout-event pattern: a failed ping raises
:class:`sqlalchemy.exc.DisconnectionError`, the pool invalidates that connection and checks
out a fresh one, the caller sees no error).

The trade-off: a connection that died within the threshold of its last use (a server
restart, ``pg_terminate_backend``, a network cut in that window) is not caught at checkout.
Its first statement then fails; SQLAlchemy's disconnect detection (``is_disconnect``)
invalidates the connection and every older one of its pool, so that request gets an error
and the next ones reconnect, as without any pre-ping.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event, exc
from sqlalchemy.pool import Pool

IDLE_PING_SECONDS = 2.0
"""A connection idle in its pool longer than this is pinged at checkout (read at each one)."""
IDLE_SINCE = "qalitel_idle_since"
"""Key of the connection record's ``info`` (cleared by SQLAlchemy with its connection)."""


def ping_when_idle(target: Pool | Engine) -> None:
    """Install the idle-time ping on a pool (or an engine's pool). Use instead of
    ``pool_pre_ping``, never with it."""
    pool = target.pool if isinstance(target, Engine) else target
    dialect = pool._dialect

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(IDLE_SINCE, None)
        if since is None or time.monotonic() - since <= IDLE_PING_SECONDS:
            return  # just connected, or used a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error

    event.listen(pool, "checkin", checkin)
    event.listen(pool, "checkout", checkout)
