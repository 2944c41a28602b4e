"""Tenant engines stay bounded: an LRU of engines, pools without overflow, so the tenant
connections one process holds never exceed ``engine_cache_size × tenant_pool_size``.

Open connections are counted where they really are: on PostgreSQL in ``pg_stat_activity``
(filtered by this run's tenant roles), on SQLite by whether the DBAPI connection still works.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg2
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

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


def _settle(predicate, timeout: float = 5.0) -> bool:
    """A backend leaves pg_stat_activity a moment after its client closed: poll briefly."""
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
            release.wait(timeout=30)

    holder = threading.Thread(target=hold_a)
    holder.start()
    assert holding.wait(timeout=30)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    raw_b = _touch(app, b)
    waited = time.monotonic() - started
    holder.join(timeout=30)
    assert waited >= 0.25, waited  # b could not be served while a was held
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
        assert _pg_connections([b]) == {b.slug: 0}
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
                assert _pg_connections([a]) == {a.slug: 2}


def test_many_tenants_served_in_turn_stay_within_budget(make_app, backend, password_hash):
    """30 tenants, cache of 4: real requests (sign-in and a signed-in page) for each in turn;
    the open tenant connections never exceed 4 × 2."""
    app = make_app(backend, engine_cache_size=4, tenant_pool_size=2)
    infos = _make_tenants(app, 30, password_hash)
    cache = _cache(app)
    budget = cache.connection_budget
    assert budget == 8
    peak = 0
    for info in infos:
        client = app.test_client()
        assert login(client, info.slug, f"admin@{info.slug}.example").status_code == 302
        assert client.get(f"/t/{info.slug}/").status_code == 200
        open_now = (sum(_pg_connections(infos).values()) if backend == "postgresql"
                    else cache.checked_out())
        peak = max(peak, open_now)
        assert open_now <= budget, (info.slug, open_now)
        assert cache.live <= 4
    assert peak >= 1
    assert cache.created >= 30 and cache.evicted >= 26 and cache.disposed == cache.evicted


def test_concurrent_threads_stay_within_budget(make_app, backend, password_hash):
    """8 threads, 12 tenants, cache of 3: a tenant waits for a free engine rather than open
    a fourth one, and nothing fails."""
    app = make_app(backend, engine_cache_size=3, tenant_pool_size=2, tenant_pool_timeout=30)
    infos = _make_tenants(app, 12, password_hash)
    cache = _cache(app)
    stop = threading.Event()
    errors: list[BaseException] = []
    peak = {"live": 0, "connections": 0}

    def sample() -> None:
        monitor = psycopg2.connect(PG_URL) if backend == "postgresql" else None
        try:
            while not stop.is_set():
                peak["live"] = max(peak["live"], cache.live)
                peak["connections"] = max(peak["connections"], cache.checked_out())
                if monitor is not None:
                    peak["connections"] = max(peak["connections"],
                                              sum(_pg_connections(infos, monitor).values()))
                time.sleep(0.005)
        finally:
            if monitor is not None:
                monitor.close()

    def work(index: int) -> None:
        try:
            for turn in range(15):
                _touch(app, infos[(index * 5 + turn * 7) % len(infos)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    stop.set()
    sampler.join(timeout=10)
    assert errors == []
    assert not any(t.is_alive() for t in workers)
    assert 1 <= peak["live"] <= 3
    assert 1 <= peak["connections"] <= cache.connection_budget == 6
    assert cache.live <= 3 and cache.evicted >= 9


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
