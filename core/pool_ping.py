"""Ping a pooled connection at checkout only when it sat idle in the pool for a while.

SQLAlchemy's ``pool_pre_ping`` sends a ``SELECT 1`` at every checkout: a round trip per pool
per request, although a connection checked in a few milliseconds ago is almost always alive.
:func:`ping_when_idle` pings only a connection idle longer than :data:`IDLE_PING_SECONDS`
(SQLAlchemy's documented custom checkout-event pattern: a failed ping raises
:class:`sqlalchemy.exc.DisconnectionError`, the pool invalidates that connection and checks
out a fresh one, the caller sees no error).

A connection used less than that ago is not pinged, but its socket is polled (no round
trip): a PostgreSQL backend that was terminated or shut down sends its ``FATAL`` message and
closes, so the socket polls as readable while the connection sits idle, and such a
connection is pinged (and replaced) too. Under steady traffic no connection idles 2 s, and
this poll is what keeps a restart from failing requests.

What is left: a connection whose server vanished without a word within the threshold (a
network cut, a crashed host) is not caught at checkout. Its first statement then fails;
SQLAlchemy's disconnect detection (``is_disconnect``) invalidates the connection and every
older one of its pool, so that request gets an error and the next ones reconnect.
"""

from __future__ import annotations

import select
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
        if since is None:
            return  # just connected
        if time.monotonic() - since <= IDLE_PING_SECONDS and not _has_news(dbapi_connection):
            return  # used a moment ago, and the server said nothing since
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error

    event.listen(pool, "checkin", checkin)
    event.listen(pool, "checkout", checkout)


def _has_news(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read (a server's goodbye, or its
    EOF): no round trip. Connections without a socket (SQLite) have none."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return False
    try:
        poller = select.poll()  # not select.select: no limit on the descriptor's number
        poller.register(fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))  # readable, or hung up / in error
    except Exception:  # noqa: BLE001  (closed already: psycopg2 raises its InterfaceError)
        return True
