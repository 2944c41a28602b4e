"""Tenant engines stay bounded: an LRU of engines, pools without overflow, so the tenant
connections one process holds never exceed ``engine_cache_size × tenant_pool_size``.

Exact counts are taken on the client side, where the budget is kept: pool events of every
engine the cache builds count the DBAPI connections opened and closed (``opened`` fixture), and
on SQLite a connection is closed when it no longer works. The server's view
(``pg_stat_activity``, filtered by this run's tenant roles) is checked once it has settled: a
backend stays listed a moment after its client closed.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg2
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy import exc as sa_exc

from tests.conftest import PASSWORD, PG_PREFIX, PG_URL, RUN, login


@pytest.fixture(scope="module")
def password_hash() -> str:
    """A deliberately cheap hash: these tests count connections, not key stretching."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def _settings(app):
    return app.extensions["qalitel_settings"]


def _cache(app):
    return app.extensions["qalitel_engines"]


def _make_tenants(app, count: int, password_hash: str) -> list:
    """``count`` tenants named after this run; returns their TenantInfo snapshots."""
    from tenants.engines import TenantInfo
    from tenants.provisioning import create_tenant

    infos = []
    with app.app_context():
        for i in range(count):
            slug = f"e{RUN}-{i}"
            result = create_tenant(_settings(app), slug, f"Engines {i}", f"admin@{slug}.example",
                                   PASSWORD, password_hash=password_hash)
            infos.append(TenantInfo.from_row(result.tenant))
    return infos


def _pg_connections(infos, monitor=None) -> dict[str, int]:
    """Open server connections per tenant slug, as PostgreSQL sees them."""
    roles = [f"{PG_PREFIX}{info.slug}" for info in infos]
    conn = monitor or psycopg2.connect(PG_URL)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT application_name, count(*) FROM pg_stat_activity "
                        "WHERE usename = ANY(%s) GROUP BY application_name", (roles,))
            rows = dict(cur.fetchall())
    finally:
        if monitor is None:
            conn.close()
    return {info.slug: rows.get(f"qalitel:{info.slug}", 0) for info in infos}


class OpenConnections:
    """Tenant DBAPI connections open on the client side: +1 when a pool of an engine the
    cache built connects, -1 when it closes one; ``peak`` is the most open at once, and
    ``on_connect`` (if set) is called after each count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.on_connect = None

    def watch(self, engine: Engine) -> None:
        event.listen(engine, "connect", self._connected)
        event.listen(engine, "close", self._closed)
        event.listen(engine, "close_detached", self._closed)

    def _connected(self, *_args) -> None:
        with self._lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        if self.on_connect is not None:
            self.on_connect()

    def _closed(self, *_args) -> None:
        with self._lock:
            self.open -= 1


@pytest.fixture
def opened(monkeypatch) -> OpenConnections:
    """Counts the connections of every tenant engine built during the test (the real
    engines, watched through their pool events)."""
    return watch_builds(monkeypatch, OpenConnections())


def watch_builds(monkeypatch, watcher):
    """Have ``watcher.watch(engine)`` see every tenant engine built during the test."""
    from tenants import engines

    build = engines.build_engine

    def build_and_watch(*args, **kwargs):
        engine = build(*args, **kwargs)
        watcher.watch(engine)
        return engine

    monkeypatch.setattr(engines, "build_engine", build_and_watch)
    return watcher


def _settle(predicate, timeout: float = 60.0) -> bool:
    """Wait until ``predicate()`` holds (a backend leaves pg_stat_activity a moment after its
    client closed); the timeout only bounds a failing test."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _touch(app, info):
    """One query on the tenant's database through the cache; returns the DBAPI connection."""
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(info) as ctx:
        conn = ctx.session.connection()
        assert conn.execute(text("SELECT slug FROM tenant_identity")).scalar_one() == info.slug
        return conn.connection.dbapi_connection


def _is_closed(dbapi_connection) -> bool:
    if isinstance(dbapi_connection, sqlite3.Connection):
        try:
            dbapi_connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return True
        return False
    return dbapi_connection.closed != 0


def test_lru_eviction_disposes_the_least_recently_used(make_app, backend, password_hash):
    app = make_app(backend, engine_cache_size=2)
    a, b, c = _make_tenants(app, 3, password_hash)
    cache = _cache(app)
    raw_a = _touch(app, a)
    raw_b = _touch(app, b)
    _touch(app, a)  # a is now more recent than b
    raw_c = _touch(app, c)
    assert a.uid in cache and c.uid in cache and b.uid not in cache
    assert (cache.created, cache.evicted, cache.disposed, cache.live) == (3, 1, 1, 2)
    assert _is_closed(raw_b) and not _is_closed(raw_a) and not _is_closed(raw_c)
    assert cache.checked_out() == 2
    if backend == "postgresql":
        assert _settle(lambda: _pg_connections([a, b, c]) == {a.slug: 1, b.slug: 0, c.slug: 1})


def test_leased_engine_is_not_evicted_and_a_new_tenant_waits_for_a_release(
        make_app, backend, password_hash):
    """Every live engine leased: the next tenant waits, then evicts the one released."""
    app = make_app(backend, engine_cache_size=1, tenant_pool_timeout=10)
    a, b = _make_tenants(app, 2, password_hash)
    cache = _cache(app)
    holding, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def hold_a() -> None:
        with app.app_context(), cache.lease(a) as engine, engine.connect() as conn:
            seen["raw_a"] = conn.connection.dbapi_connection
            holding.set()
            release.wait(timeout=60)
            seen["b_served_while_a_held"] = "raw_b" in seen

    holder = threading.Thread(target=hold_a)
    holder.start()
    assert holding.wait(timeout=60)
    threading.Timer(0.3, release.set).start()
    seen["raw_b"] = raw_b = _touch(app, b)
    holder.join(timeout=60)
    assert not holder.is_alive() and release.is_set()
    assert seen["b_served_while_a_held"] is False  # b waited for a's release
    assert b.uid in cache and a.uid not in cache
    assert _is_closed(seen["raw_a"]) and not _is_closed(raw_b)
    assert cache.live == 1 and cache.checked_out() == 1
    if backend == "postgresql":
        assert _settle(lambda: _pg_connections([a, b]) == {a.slug: 0, b.slug: 1})


def test_full_cache_times_out_without_opening_anything(make_app, backend, password_hash):
    from tenants.engines import EngineCacheFullError

    app = make_app(backend, engine_cache_size=1, tenant_pool_timeout=0.3)
    a, b = _make_tenants(app, 2, password_hash)
    cache = _cache(app)
    with app.app_context(), cache.lease(a) as engine, engine.connect():
        with pytest.raises(EngineCacheFullError), cache.lease(b):
            pass  # pragma: no cover - never reached
        assert b.uid not in cache and cache.live == 1 and cache.created == 1
    if backend == "postgresql":
        assert _settle(lambda: _pg_connections([b]) == {b.slug: 0})
    _touch(app, b)  # a is released: b now evicts it
    assert a.uid not in cache and b.uid in cache


def test_leased_engine_invalidated_is_disposed_on_release(make_app, backend, password_hash):
    app = make_app(backend, engine_cache_size=4)
    (a,) = _make_tenants(app, 1, password_hash)
    cache = _cache(app)
    with app.app_context(), cache.lease(a) as engine:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            cache.invalidate(a.uid)  # e.g. the tenant was suspended mid-request
            assert a.uid not in cache and cache.live == 1
            assert conn.execute(text("SELECT count(*) FROM tenant_identity")).scalar() == 1
        assert not _is_closed(raw) and cache.disposed == 0
    assert _is_closed(raw)
    assert (cache.live, cache.disposed, cache.checked_out()) == (0, 1, 0)
    if backend == "postgresql":
        assert _settle(lambda: _pg_connections([a]) == {a.slug: 0})
    _touch(app, a)  # served again through a fresh engine
    assert cache.created == 2


def test_invalidate_idle_engine_closes_its_connections(make_app, backend, password_hash):
    app = make_app(backend, engine_cache_size=4)
    a, b = _make_tenants(app, 2, password_hash)
    cache = _cache(app)
    raw_a, raw_b = _touch(app, a), _touch(app, b)
    cache.invalidate(a.uid)
    cache.invalidate("no-such-uid")  # unknown: nothing happens
    assert _is_closed(raw_a) and not _is_closed(raw_b)
    assert a.uid not in cache and b.uid in cache and cache.live == 1
    if backend == "postgresql":
        assert _settle(lambda: _pg_connections([a, b]) == {a.slug: 0, b.slug: 1})
    cache.clear()
    assert _is_closed(raw_b) and len(cache) == 0 and cache.live == 0


def test_pool_has_no_overflow(make_app, backend, password_hash):
    app = make_app(backend, tenant_pool_size=2, tenant_pool_timeout=0.3)
    (a,) = _make_tenants(app, 1, password_hash)
    cache = _cache(app)
    with app.app_context(), cache.lease(a) as engine:
        assert engine.pool.size() == 2
        with engine.connect(), engine.connect():
            with pytest.raises(sa_exc.TimeoutError):
                engine.connect()
            assert engine.pool.checkedout() == 2
            if backend == "postgresql":
                assert _settle(lambda: _pg_connections([a]) == {a.slug: 2})


def test_many_tenants_served_in_turn_stay_within_budget(make_app, backend, password_hash,
                                                       opened):
    """30 tenants, cache of 4: real requests (sign-in and a signed-in page) for each in turn;
    the open tenant connections never exceed 4 × 2, and the server sees no more than that."""
    app = make_app(backend, engine_cache_size=4, tenant_pool_size=2)
    infos = _make_tenants(app, 30, password_hash)
    cache = _cache(app)
    budget = cache.connection_budget
    assert budget == 8
    for info in infos:
        client = app.test_client()
        assert login(client, info.slug, f"admin@{info.slug}.example").status_code == 302
        assert client.get(f"/t/{info.slug}/").status_code == 200
        assert opened.open == cache.checked_out() <= budget, (info.slug, opened.open)
        assert cache.live <= 4
        if backend == "postgresql":
            assert _settle(lambda: sum(_pg_connections(infos).values()) == opened.open), (
                info.slug, _pg_connections(infos), opened.open)
    assert 1 <= opened.peak <= budget
    assert cache.created >= 30 and cache.evicted >= 26 and cache.disposed == cache.evicted


def test_concurrent_threads_stay_within_budget(make_app, backend, password_hash, opened):
    """8 threads, 12 tenants, cache of 3: a tenant waits for a free engine rather than open
    a fourth one, and nothing fails. The budget is counted exactly on the client side at every
    connect; the server's count, once settled, matches it."""
    app = make_app(backend, engine_cache_size=3, tenant_pool_size=2, tenant_pool_timeout=60)
    infos = _make_tenants(app, 12, password_hash)
    cache = _cache(app)
    errors: list[BaseException] = []
    peak_live = [0]

    def at_connect() -> None:
        peak_live[0] = max(peak_live[0], cache.live)

    opened.on_connect = at_connect

    def work(index: int) -> None:
        try:
            for turn in range(15):
                _touch(app, infos[(index * 5 + turn * 7) % len(infos)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)
    assert errors == []
    assert not any(t.is_alive() for t in workers)
    assert 1 <= peak_live[0] <= 3
    assert 1 <= opened.peak <= cache.connection_budget == 6
    assert opened.open == cache.checked_out()
    assert cache.live <= 3 and cache.evicted >= 9
    if backend == "postgresql":
        assert _settle(lambda: sum(_pg_connections(infos).values()) == opened.open), (
            _pg_connections(infos), opened.open)


def test_first_admin_written_without_an_engine_is_a_complete_row(make_app, backend,
                                                                  password_hash):
    """Provisioning inserts the first admin through a plain DBAPI connection: Python-side
    defaults and type conversions must come out as the ORM would write them."""
    from qalitel.users.models import Profile, User
    from tenants.context import tenant_context

    app = make_app(backend)
    (a,) = _make_tenants(app, 1, password_hash)
    with app.app_context(), tenant_context(a) as ctx:
        (admin,) = ctx.session.query(User).all()
        assert (admin.email, admin.profile, admin.password_hash) == (
            f"admin@{a.slug}.example", Profile.ADMIN, password_hash)
        assert admin.name == "admin" and len(admin.session_token) >= 24
        assert admin.created_at is not None and admin.suspended_at is None
        raw = ctx.session.execute(text("SELECT profile FROM users")).scalar_one()
        assert raw == "admin"
