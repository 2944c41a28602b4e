"""Leases in the platform database (``job_locks``): a named lock that works across processes
and hosts, on PostgreSQL and SQLite alike.

A lease is taken by a conditional ``UPDATE`` of an expired row, or else by an ``INSERT`` (the
primary key makes a second one fail), each in its own short transaction on a connection of its
own, so no database lock is held while the work runs. That connection is opened for the
statement and closed after it, never taken from the app's pool: work that fills the pool (or
holds its connections long) cannot starve the renewals and so lose its own lease.
:func:`held` renews the lease from a thread while the block runs and deletes it at the end; a
holder that crashed leaves a row that expires ``ttl`` after its last renewal, and the next
caller takes it over. A caller on the holder's own host takes it over at once when the
holder's process is gone (holders are named ``host:pid:random``). Times come from
:mod:`core.clock` (hosts' clocks are assumed in step to well under a ``ttl``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from flask import Flask, current_app
from sqlalchemy import URL, Connection, Engine, create_engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from core import clock
from core.db import db
from core.jobs.models import JobLock

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=10)
CONNECT_TIMEOUT_S = 10


@lru_cache(maxsize=8)
def _unpooled(url: URL) -> Engine:
    """An engine on ``url`` that opens a connection per use and closes it after (no pool)."""
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.get_backend_name() == "postgresql" \
        else {"timeout": CONNECT_TIMEOUT_S}
    return create_engine(url, poolclass=NullPool, connect_args=args)


@contextmanager
def _short_transaction() -> Iterator[Connection]:
    """One transaction on a connection of its own, to the app's platform database."""
    url = db.engine.url
    engine = db.engine if url.database in (None, "", ":memory:") else _unpooled(url)
    with engine.begin() as conn:
        yield conn


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (two holders in one process differ)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class Lease:
    name: str
    holder: str
    ttl: timedelta
    lost: bool = field(default=False)

    def renew(self) -> bool:
        """Push the expiry ``ttl`` ahead; False (and ``lost``) when another holder took it."""
        with _short_transaction() as conn:
            done = conn.execute(update(JobLock).where(
                JobLock.name == self.name, JobLock.holder == self.holder)
                .values(expires_at=clock.now() + self.ttl)).rowcount
        if not done:
            self.lost = True
        return bool(done)

    def release(self) -> None:
        with _short_transaction() as conn:
            conn.execute(delete(JobLock).where(JobLock.name == self.name,
                                               JobLock.holder == self.holder))


def acquire(name: str, ttl: timedelta = DEFAULT_TTL, holder: str | None = None) -> Lease | None:
    """The lease ``name`` if nobody holds it (or its holder's lease expired), else None."""
    holder = holder or holder_id()
    now = clock.now()
    with _short_transaction() as conn:
        taken = conn.execute(update(JobLock).where(
            JobLock.name == name, JobLock.expires_at < now)
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)).rowcount
    if not taken:
        try:
            with _short_transaction() as conn:
                conn.execute(insert(JobLock).values(name=name, holder=holder, acquired_at=now,
                                                    expires_at=now + ttl))
        except IntegrityError:
            return _take_from_dead(name, ttl, holder)
    return Lease(name, holder, ttl)


def _dead_here(holder: str) -> bool:
    """True when ``holder`` names a process of this host that no longer exists."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname()[:120] or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (owned by another user)
        return False
    return False


def _take_from_dead(name: str, ttl: timedelta, holder: str) -> Lease | None:
    with _short_transaction() as conn:
        current = conn.execute(select(JobLock.holder).where(JobLock.name == name)).scalar()
        if current is None or not _dead_here(current):
            return None
        now = clock.now()
        taken = conn.execute(update(JobLock).where(JobLock.name == name,
                                                   JobLock.holder == current)
                             .values(holder=holder, acquired_at=now,
                                     expires_at=now + ttl)).rowcount
    if not taken:
        return None
    log.warning("lease %s taken over from %s, a process of this host that is gone", name,
                current)
    return Lease(name, holder, ttl)


class Heartbeat:
    """Renews a lease every ``interval`` seconds (real time; a third of its ttl by default)
    from a thread, until stopped."""

    def __init__(self, app: Flask, lease: Lease, interval: float | None = None) -> None:
        self.app, self.lease = app, lease
        self.interval = interval or max(1.0, lease.ttl.total_seconds() / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"lease-{lease.name}")

    def _beat(self) -> None:
        with self.app.app_context():
            while not self._stop.wait(self.interval):
                try:
                    if not self.lease.renew():
                        log.error("lease %s was taken over by another holder", self.lease.name)
                        return
                except Exception:  # the next beat tries again; the lease lasts a ttl
                    log.exception("renewing lease %s failed", self.lease.name)
                finally:
                    db.session.remove()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def held(name: str, ttl: timedelta = DEFAULT_TTL) -> Iterator[Lease | None]:
    """Hold the lease ``name`` for the block (renewed meanwhile, released at the end); yields
    None, and runs the block anyway, when another holder has it: the caller skips its work."""
    lease = acquire(name, ttl)
    if lease is None:
        yield None
        return
    try:
        with Heartbeat(current_app._get_current_object(), lease):
            yield lease
    finally:
        try:
            lease.release()
        except Exception:  # it expires on its own
            log.exception("releasing lease %s failed", name)
