"""Tenant engines: built from the registry, checked against the identity row, kept in a
bounded LRU per process, evicted ones kept dormant (without connections) behind it.

Connections a process opens to tenant databases stay within
``engine_cache_size × tenant_pool_size`` (pools have no overflow): an engine evicted while a
request still holds it is disposed when that request releases it; dormant engines hold none.
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
from core.pool_ping import ping_when_idle
from tenants.dialects import Kits, engine_on_dialect
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

    @property
    def engine_key(self) -> tuple:
        """What an engine is built from: a cached engine whose key differs (new credentials,
        server, database or schema revision) is rebuilt, never reused."""
        return (self.uid, self.slug, self.backend, self.database_name, self.role_name,
                self.role_password_encrypted, self.server_url_encrypted, self.schema_revision)


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


def _identity_row(cursor) -> tuple | None:
    cursor.execute("SELECT tenant_uid, slug FROM tenant_identity WHERE id = 1")
    return cursor.fetchone()


def check_identity(dbapi_connection, expected_uid: str, slug: str) -> None:
    """Refuse a connection whose database does not name this tenant in its identity row.

    One statement, one round trip: an idle PostgreSQL connection reads the row in autocommit
    (no ``BEGIN``/``COMMIT``) and is handed back as it came; inside a transaction the row is
    read and that transaction committed, as before. Any error refuses the connection.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        try:
            row = _identity_row(cursor)
        finally:
            cursor.close()
    else:
        from psycopg2.extensions import TRANSACTION_STATUS_IDLE  # loaded with the connection

        idle = (dbapi_connection.get_transaction_status() == TRANSACTION_STATUS_IDLE)
        autocommit = dbapi_connection.autocommit
        if idle and not autocommit:
            dbapi_connection.autocommit = True
        try:
            with dbapi_connection.cursor() as cursor:
                row = _identity_row(cursor)
        finally:
            if idle and not autocommit:
                dbapi_connection.autocommit = False
        if not idle and not autocommit:
            dbapi_connection.commit()
    if row is None or row[0] != expected_uid or row[1] != slug:
        raise TenantIdentityError(f"database does not belong to tenant {slug}")


def build_engine(info: TenantInfo, settings: Settings, *, pooled: bool = True,
                 kits: Kits | None = None) -> Engine:
    """Create an engine for one tenant; every new connection is checked against the identity.

    With ``kits`` (the engine cache's), the engine shares its server's initialised dialect
    and the compiled-SQL cache of its server and schema revision (``tenants.dialects``).
    """
    url = tenant_url(info, settings)
    pool: dict = {"pool_size": settings.tenant_pool_size, "max_overflow": 0,
                  "timeout": settings.tenant_pool_timeout}
    if info.backend is Backend.POSTGRESQL:
        pool["recycle"] = 1800
        connect_args: dict = {"connect_timeout": 5,
                              "application_name": f"qalitel:{info.slug}"[:63]}
    else:
        connect_args = {"check_same_thread": False}
    kit = kits.kit(url, info.schema_revision) if kits is not None and pooled else None
    if kit is not None and kit.dialect is not None:
        engine = engine_on_dialect(kit.dialect, url, pool=pool, connect_args=connect_args)
    else:
        options: dict = {"connect_args": connect_args}
        if kit is not None:
            options["query_cache_size"] = 0  # the kit's cache serves instead
        if info.backend is Backend.POSTGRESQL:
            options["use_native_hstore"] = False  # no hstore: no type look-up per connection
        if not pooled:
            options["poolclass"] = NullPool
        else:
            options.update({f"pool_{k}" if k in ("timeout", "recycle") else k: v
                            for k, v in pool.items()})
        engine = create_engine(url, **options)
    if pooled:
        ping_when_idle(engine)
    if kit is not None:
        engine.update_execution_options(compiled_cache=kit.compiled_cache)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no branch
        if info.backend is Backend.SQLITE:
            harden_sqlite(dbapi_connection)
        check_identity(dbapi_connection, info.uid, info.slug)
        if kit is not None and kit.dialect is None and kits is not None:
            kits.adopt(kit, engine.dialect)  # initialised by now (create_engine's listener)

    return engine


class EngineCacheFullError(TimeoutError):
    """Every cached engine is in use and no slot freed up within the pool timeout."""


class _Entry:
    __slots__ = ("engine", "key", "leases", "park", "retired", "uid")

    def __init__(self, info: TenantInfo, engine: Engine) -> None:
        self.uid = info.uid
        self.key = info.engine_key
        self.engine = engine
        self.leases = 0
        self.retired = False
        self.park = False  # evicted idle: kept dormant once its pool is drained


class EngineCache:
    """Bounded LRU of tenant engines, keyed by tenant uid, and behind it an LRU of dormant ones.

    At most ``engine_cache_size`` engines are live (may hold connections) at once, counting
    cached ones and ones evicted or invalidated while a request still holds them or while
    their pool is being drained. A new tenant evicts the least recently used idle engine; when
    every live engine is leased, it waits up to ``tenant_pool_timeout`` for one to be
    released, then raises :class:`EngineCacheFullError`. With pools of ``tenant_pool_size``
    and no overflow, a process never holds more than :attr:`connection_budget` tenant
    connections.

    An evicted engine's pool is drained (its connections closed) and the engine kept among at
    most ``dormant_engine_cache_size`` dormant ones, which hold no connection: that tenant's
    next request revives it (one connect; no engine build, dialect initialisation or SQL
    compilation). An engine whose tenant's :attr:`TenantInfo.engine_key` changed (credentials,
    server, database, schema revision) is never reused. :meth:`invalidate` drops a tenant's
    engine, live or dormant.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.maxsize = settings.engine_cache_size
        self.dormant_maxsize = settings.dormant_engine_cache_size
        self.timeout = settings.tenant_pool_timeout
        self.kits = Kits()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._dormant: OrderedDict[str, _Entry] = OrderedDict()
        self._live: set[_Entry] = set()
        self._cond = threading.Condition()
        self.created = 0
        self.disposed = 0
        self.evicted = 0
        self.revived = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    @property
    def live(self) -> int:
        """Engines that may hold connections: cached, plus retired ones a request still holds
        or whose pool is being drained."""
        return len(self._live)

    @property
    def dormant(self) -> int:
        """Evicted engines kept without connections."""
        return len(self._dormant)

    def is_dormant(self, uid: str) -> bool:
        return uid in self._dormant

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
                if entry is not None and entry.key == info.engine_key:
                    self._entries.move_to_end(info.uid)
                    entry.leases += 1
                    return entry
                if entry is not None:  # stale: its tenant changed since it was built
                    closing = self._retire(entry)
                elif len(self._live) < self.maxsize:
                    entry = self._revive(info) or self._build(info)
                    self._entries[info.uid] = entry
                    self._live.add(entry)
                    entry.leases += 1
                    return entry
                else:
                    closing = next((e for e in self._entries.values() if e.leases == 0), None)
                    if closing is None:
                        now = time.monotonic()
                        deadline = now + self.timeout if deadline is None else deadline
                        if now >= deadline:
                            raise EngineCacheFullError(
                                f"all {self.maxsize} tenant engines are in use")
                        self._cond.wait(deadline - now)
                        continue
                    del self._entries[closing.uid]
                    closing.retired = True
                    closing.park = self.dormant_maxsize > 0
                    self.evicted += 1
            if closing is not None:
                self._dispose(closing)  # outside the lock; still counted live until drained

    def _build(self, info: TenantInfo) -> _Entry:
        self.created += 1
        return _Entry(info, build_engine(info, self.settings, kits=self.kits))

    def _revive(self, info: TenantInfo) -> _Entry | None:
        entry = self._dormant.pop(info.uid, None)
        if entry is None or entry.key != info.engine_key:
            return None  # a stale dormant engine holds no connection: just forgotten
        entry.retired = entry.park = False
        self.revived += 1
        return entry

    def _retire(self, entry: _Entry) -> _Entry | None:
        """Take ``entry`` out of the cache for good; returns it if it is to be disposed now
        (otherwise its last lease disposes it)."""
        self._entries.pop(entry.uid, None)
        entry.retired = True
        entry.park = False
        return entry if entry.leases == 0 else None

    def _release(self, entry: _Entry) -> None:
        with self._cond:
            entry.leases -= 1
            dispose = entry.retired and entry.leases == 0
            if entry.leases == 0 and not dispose:
                self._cond.notify_all()  # an idle engine: waiting tenants may evict it
        if dispose:
            self._dispose(entry)

    def _dispose(self, entry: _Entry) -> None:
        """Close the engine's connections (``Engine.dispose``: the engine stays usable with an
        empty pool), then park it if it was evicted and nothing invalidated it meanwhile."""
        try:
            entry.engine.dispose()
        finally:
            with self._cond:
                self._live.discard(entry)
                self.disposed += 1
                if entry.park and entry.uid not in self._entries:
                    self._dormant[entry.uid] = entry
                    self._dormant.move_to_end(entry.uid)
                    while len(self._dormant) > self.dormant_maxsize:
                        self._dormant.popitem(last=False)
                entry.park = False
                self._cond.notify_all()

    def invalidate(self, uid: str) -> None:
        """Drop a tenant's engine, live or dormant (suspension, credentials change, restore,
        deletion): its next request builds a new one."""
        with self._cond:
            self._dormant.pop(uid, None)
            for draining in self._live:
                if draining.uid == uid:
                    draining.park = False
            entry = self._entries.get(uid)
            closing = self._retire(entry) if entry is not None else None
        if closing is not None:
            self._dispose(closing)

    def clear(self) -> None:
        """Drop every engine, live and dormant."""
        with self._cond:
            uids = list(self._entries) + list(self._dormant)
            for draining in self._live:
                draining.park = False
        for uid in uids:
            self.invalidate(uid)

    def checked_out(self) -> int:
        """Connections open in live and dormant engines' pools, idle or in use (tests and
        benchmarks; dormant ones must hold none)."""
        with self._cond:
            entries = list(self._live) + list(self._dormant.values())
        total = 0
        for entry in entries:
            pool = entry.engine.pool
            total += getattr(pool, "checkedin", lambda: 0)() + getattr(
                pool, "checkedout", lambda: 0)()
        return total

    open_connections = checked_out
