"""Tenant engines: built from the registry, checked against the identity row, kept in a
bounded LRU per process.

Connections a process opens to tenant databases stay within
``engine_cache_size × tenant_pool_size`` (pools have no overflow): an engine evicted while a
request still holds it is disposed when that request releases it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import NullPool

from core.config import Settings
from core.crypto import decrypt
from tenants.registry import Backend, Tenant, TenantStatus


class TenantIdentityError(RuntimeError):
    """The database behind a tenant engine belongs to another tenant (or to none)."""


@dataclass(frozen=True)
class TenantInfo:
    """Immutable snapshot of a registry row: what a request needs to reach its tenant."""

    id: int
    uid: str
    slug: str
    name: str
    status: TenantStatus
    backend: Backend
    database_name: str
    role_name: str | None
    role_password_encrypted: str | None
    server_url_encrypted: str | None
    schema_revision: str | None

    @classmethod
    def from_row(cls, row: Tenant) -> TenantInfo:
        return cls(id=row.id, uid=row.uid, slug=row.slug, name=row.name, status=row.status,
                   backend=row.backend, database_name=row.database_name,
                   role_name=row.role_name, role_password_encrypted=row.role_password_encrypted,
                   server_url_encrypted=row.server.url_encrypted if row.server else None,
                   schema_revision=row.schema_revision)


def sqlite_path(settings: Settings, database_name: str) -> Path:
    return settings.sqlite_tenant_dir / database_name


def tenant_url(info: TenantInfo, settings: Settings) -> URL:
    """The URL a tenant engine uses: on PostgreSQL, the tenant's own role, never an admin."""
    if info.backend is Backend.SQLITE:
        return make_url(f"sqlite:///{sqlite_path(settings, info.database_name)}")
    if not (info.server_url_encrypted and info.role_name and info.role_password_encrypted):
        raise TenantIdentityError(f"tenant {info.slug} has no database credentials")
    server = make_url(decrypt(settings.encryption_key, info.server_url_encrypted))
    return server.set(drivername="postgresql+psycopg2", username=info.role_name,
                      password=decrypt(settings.encryption_key, info.role_password_encrypted),
                      database=info.database_name)


def deny_attach(action: int, *_args: object) -> int:
    """A SQLite authorizer refusing ``ATTACH``/``DETACH`` (one database per connection)."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def harden_sqlite(dbapi_connection: sqlite3.Connection, wal: bool = True) -> None:
    """Foreign keys on, WAL, busy timeout, and ``ATTACH`` refused on one SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    if wal:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    dbapi_connection.set_authorizer(deny_attach)


def check_identity(dbapi_connection, expected_uid: str, slug: str) -> None:
    """Refuse a connection whose database does not name this tenant in its identity row."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT tenant_uid, slug FROM tenant_identity WHERE id = 1")
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None or row[0] != expected_uid or row[1] != slug:
        raise TenantIdentityError(f"database does not belong to tenant {slug}")
    if not isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.commit()


def build_engine(info: TenantInfo, settings: Settings, *, pooled: bool = True) -> Engine:
    """Create an engine for one tenant; every new connection is checked against the identity."""
    url = tenant_url(info, settings)
    options: dict = {"pool_pre_ping": True}
    if not pooled:
        options["poolclass"] = NullPool
    elif info.backend is Backend.POSTGRESQL:
        options.update(pool_size=settings.tenant_pool_size, max_overflow=0,
                       pool_timeout=settings.tenant_pool_timeout, pool_recycle=1800)
    else:
        options.update(pool_size=settings.tenant_pool_size, max_overflow=0,
                       pool_timeout=settings.tenant_pool_timeout)
    if info.backend is Backend.POSTGRESQL:
        options["connect_args"] = {"connect_timeout": 5,
                                   "application_name": f"qalitel:{info.slug}"[:63]}
    else:
        options["connect_args"] = {"check_same_thread": False}
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no branch
        if info.backend is Backend.SQLITE:
            harden_sqlite(dbapi_connection)
        check_identity(dbapi_connection, info.uid, info.slug)

    return engine


class EngineCacheFullError(TimeoutError):
    """Every cached engine is in use and no slot freed up within the pool timeout."""


class _Entry:
    __slots__ = ("engine", "leases", "retired", "uid")

    def __init__(self, uid: str, engine: Engine) -> None:
        self.uid = uid
        self.engine = engine
        self.leases = 0
        self.retired = False


class EngineCache:
    """Bounded LRU of tenant engines, keyed by tenant uid.

    At most ``engine_cache_size`` engines are alive at once, counting cached ones and ones
    evicted or invalidated while a request still holds them (disposed when released). A new
    tenant evicts the least recently used idle engine; when every live engine is leased, it
    waits up to ``tenant_pool_timeout`` for one to be released, then raises
    :class:`EngineCacheFullError`. With pools of ``tenant_pool_size`` and no overflow, a
    process never holds more than :attr:`connection_budget` tenant connections.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.maxsize = settings.engine_cache_size
        self.timeout = settings.tenant_pool_timeout
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._live: set[_Entry] = set()
        self._cond = threading.Condition()
        self.created = 0
        self.disposed = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    @property
    def live(self) -> int:
        """Engines not yet disposed: cached, plus retired ones a request still holds."""
        return len(self._live)

    @property
    def connection_budget(self) -> int:
        return self.maxsize * self.settings.tenant_pool_size

    @contextmanager
    def lease(self, info: TenantInfo) -> Iterator[Engine]:
        """Hold the tenant's engine for the duration of a request or command."""
        entry = self._acquire(info)
        try:
            yield entry.engine
        finally:
            self._release(entry)

    def _acquire(self, info: TenantInfo) -> _Entry:
        deadline: float | None = None
        while True:
            with self._cond:
                entry = self._entries.get(info.uid)
                if entry is not None:
                    self._entries.move_to_end(info.uid)
                    entry.leases += 1
                    return entry
                if len(self._live) < self.maxsize:
                    entry = _Entry(info.uid, build_engine(info, self.settings))
                    self.created += 1
                    self._entries[info.uid] = entry
                    self._live.add(entry)
                    entry.leases += 1
                    return entry
                victim = next((e for e in self._entries.values() if e.leases == 0), None)
                if victim is None:
                    now = time.monotonic()
                    deadline = now + self.timeout if deadline is None else deadline
                    if now >= deadline:
                        raise EngineCacheFullError(
                            f"all {self.maxsize} tenant engines are in use")
                    self._cond.wait(deadline - now)
                    continue
                del self._entries[victim.uid]
                victim.retired = True
                self.evicted += 1
            self._dispose(victim)  # outside the lock; still counted live until closed

    def _release(self, entry: _Entry) -> None:
        with self._cond:
            entry.leases -= 1
            dispose = entry.retired and entry.leases == 0
            if entry.leases == 0 and not dispose:
                self._cond.notify_all()  # an idle engine: waiting tenants may evict it
        if dispose:
            self._dispose(entry)

    def _dispose(self, entry: _Entry) -> None:
        try:
            entry.engine.dispose()
        finally:
            with self._cond:
                self._live.discard(entry)
                self.disposed += 1
                self._cond.notify_all()

    def invalidate(self, uid: str) -> None:
        """Drop a tenant's engine (suspension, credentials change, deletion)."""
        with self._cond:
            entry = self._entries.pop(uid, None)
            if entry is None:
                return
            entry.retired = True
            dispose = entry.leases == 0
        if dispose:
            self._dispose(entry)

    def clear(self) -> None:
        with self._cond:
            uids = list(self._entries)
        for uid in uids:
            self.invalidate(uid)

    def checked_out(self) -> int:
        """Connections open in live engines' pools, idle or in use (tests and benchmarks)."""
        with self._cond:
            entries = list(self._live)
        total = 0
        for entry in entries:
            pool = entry.engine.pool
            total += getattr(pool, "checkedin", lambda: 0)() + getattr(
                pool, "checkedout", lambda: 0)()
        return total

    open_connections = checked_out
