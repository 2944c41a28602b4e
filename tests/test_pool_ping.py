"""Pooled connections are pinged at checkout only after sitting idle (``core.pool_ping``), on
the tenant engines and the platform engine alike.

What the server or the driver saw is read from outside the pool: on PostgreSQL the last
statement of the connection's backend (``pg_stat_activity.query``, over an admin
connection), on SQLite every statement of the connection (``set_trace_callback``). "Idle
longer than the threshold" is made by setting :data:`core.pool_ping.IDLE_PING_SECONDS` to 0
(and "just used" by a threshold of an hour), not by sleeping.
"""

from __future__ import annotations

import time

import psycopg2
import pytest
from sqlalchemy import Engine, text

from tests.conftest import PG_URL, RUN, login, provision


def _tenant_engine(app, slug: str):
    """The cached engine of ``slug`` (leased and released: it stays live in the cache)."""
    from core.db import db
    from tenants.engines import TenantInfo
    from tenants.registry import Tenant

    with app.app_context():
        info = TenantInfo.from_row(db.session.query(Tenant).filter_by(slug=slug).one())
        with app.extensions["qalitel_engines"].lease(info) as engine:
            db.session.remove()
            return engine


def _engines(app, slug: str) -> dict[str, Engine]:
    from core.db import db

    with app.app_context():
        return {"tenant": _tenant_engine(app, slug), "platform": db.engine}


def _idle_dbapi(engine: Engine) -> list:
    """The DBAPI connections idle in ``engine``'s pool (checked out and back in at once)."""
    fairies = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    found = [fairy.dbapi_connection for fairy in fairies]
    for fairy in fairies:
        fairy.close()
    return found


def _last_statement(monitor, pid: int) -> str:
    with monitor.cursor() as cur:
        cur.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = cur.fetchone()
    return row[0] if row else ""


def _wait_gone(monitor, pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    with monitor.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
            if cur.fetchone()[0] == 0:
                return
            time.sleep(0.02)
    raise AssertionError(f"backends {pids} still listed after pg_terminate_backend")


@pytest.fixture
def monitor():
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def world(platform_app, password_hash):
    slug = f"ping{RUN}"
    provision(platform_app, slug, password_hash, records=2)
    client = platform_app.test_client()
    login(client, slug, f"admin@{slug}.example")
    assert client.get(f"/t/{slug}/records/").status_code == 200
    return platform_app, client, slug


def test_no_ping_for_a_just_used_connection(world, backend, monkeypatch, request):
    from core import pool_ping

    app, _client, slug = world
    monkeypatch.setattr(pool_ping, "IDLE_PING_SECONDS", 3600.0)
    for name, engine in _engines(app, slug).items():
        with engine.connect() as conn:
            conn.execute(text("SELECT 41"))
        if backend == "postgresql":
            mon = request.getfixturevalue("monitor")
            with engine.connect() as conn:  # used a moment ago: no ping
                pid = conn.connection.dbapi_connection.get_backend_pid()
                assert _last_statement(mon, pid) != "SELECT 1", name
            monkeypatch.setattr(pool_ping, "IDLE_PING_SECONDS", 0.0)
            with engine.connect() as conn:  # "idle longer than the threshold": pinged
                assert _last_statement(mon, pid) == "SELECT 1", name
                assert conn.connection.dbapi_connection.get_backend_pid() == pid
        else:
            [dbapi] = _idle_dbapi(engine)
            seen: list[str] = []
            dbapi.set_trace_callback(seen.append)
            with engine.connect() as conn:
                conn.execute(text("SELECT 42"))
            assert seen and "SELECT 1" not in seen, (name, seen)
            monkeypatch.setattr(pool_ping, "IDLE_PING_SECONDS", 0.0)
            seen.clear()
            with engine.connect() as conn:
                conn.execute(text("SELECT 43"))
            assert seen[0] == "SELECT 1" and "SELECT 43" in seen, (name, seen)
            dbapi.set_trace_callback(None)
        monkeypatch.setattr(pool_ping, "IDLE_PING_SECONDS", 3600.0)


def test_a_request_after_the_app_requests_sends_no_ping(world, backend):
    """Two requests in a row: the second checks out connections used a moment ago."""
    app, client, slug = world
    engines = _engines(app, slug)
    if backend == "sqlite":
        seen: list[str] = []
        traced = [dbapi for engine in engines.values() for dbapi in _idle_dbapi(engine)]
        for dbapi in traced:
            dbapi.set_trace_callback(seen.append)
        assert client.get(f"/t/{slug}/records/").status_code == 200
        for dbapi in traced:
            dbapi.set_trace_callback(None)
        assert seen and "SELECT 1" not in seen
    else:
        assert client.get(f"/t/{slug}/records/").status_code == 200


def test_a_connection_killed_while_idle_is_replaced_without_an_error(world, backend,
                                                                     monkeypatch, request):
    from core import pool_ping

    app, client, slug = world
    engines = _engines(app, slug)
    idle = {name: _idle_dbapi(engine) for name, engine in engines.items()}
    assert all(idle.values()), idle
    if backend == "postgresql":
        mon = request.getfixturevalue("monitor")
        pids = [dbapi.get_backend_pid() for found in idle.values() for dbapi in found]
        with mon.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", (pids,))
        _wait_gone(mon, pids)
    else:
        for found in idle.values():
            for dbapi in found:
                dbapi.close()  # a dead connection: every use raises
    monkeypatch.setattr(pool_ping, "IDLE_PING_SECONDS", 0.0)
    page = client.get(f"/t/{slug}/records/")
    assert page.status_code == 200
    assert f"{slug} record 1" in page.get_data(as_text=True)
    for name, engine in engines.items():
        fresh = _idle_dbapi(engine)
        assert fresh and not set(map(id, fresh)) & set(map(id, idle[name])), name
        if backend == "postgresql":
            assert not {d.get_backend_pid() for d in fresh} & set(pids), name


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # a server's goodbye
def test_a_connection_terminated_a_moment_after_use_is_replaced_without_an_error(
        world, backend, monkeypatch, monitor):
    """Under steady traffic no connection idles past the threshold: a backend terminated
    (restart, ``pg_terminate_backend``) is found by its socket having its FATAL to read, with
    no round trip for the healthy ones."""
    from core import pool_ping

    app, client, slug = world
    monkeypatch.setattr(pool_ping, "IDLE_PING_SECONDS", 3600.0)  # every connection "just used"
    engines = _engines(app, slug)
    idle = {name: _idle_dbapi(engine) for name, engine in engines.items()}
    healthy = [dbapi for found in idle.values() for dbapi in found]
    assert healthy and not any(pool_ping._has_news(dbapi) for dbapi in healthy)
    pids = [dbapi.get_backend_pid() for dbapi in healthy]
    with monitor.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", (pids,))
    _wait_gone(monitor, pids)
    for _ in range(3):
        page = client.get(f"/t/{slug}/records/")
        assert page.status_code == 200
    for name, engine in engines.items():
        fresh = _idle_dbapi(engine)
        assert fresh and not {d.get_backend_pid() for d in fresh} & set(pids), name
