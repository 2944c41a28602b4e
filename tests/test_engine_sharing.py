"""What tenant engines share (``tenants.dialects``): one initialised dialect per server and
schema revision, one compiled-SQL cache with it; the identity check costs one statement; the
registry row and its server come in one platform query.

Statements are counted on the DBAPI connection itself, from its very first use: a SQLite trace
callback, or a counting cursor factory on psycopg2 (which also counts the ``BEGIN`` psycopg2
sends before a statement outside autocommit; its ``COMMIT``/``ROLLBACK`` follows from it).
"""

from __future__ import annotations

import dataclasses
import sqlite3

import psycopg2
import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event, select, update

from tests.test_engines import _cache, _make_tenants, _touch, watch_builds

IDENTITY_SQL = "SELECT tenant_uid, slug FROM tenant_identity WHERE id = 1"


class _CountingCursor(psycopg2.extensions.cursor):
    log: dict[int, list[str]] = {}

    def execute(self, query, vars=None):  # noqa: A002 - psycopg2's signature
        log = self.log.setdefault(id(self.connection), [])
        if (not self.connection.autocommit
                and self.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE):
            log.append("BEGIN")
        log.append(query if isinstance(query, str) else str(query))
        return super().execute(query, vars)


class FirstConnects:
    """The statements each new connection of a cache-built engine sends before it is handed
    out (dialect set-up and initialisation, SQLite hardening, the identity check)."""

    def __init__(self) -> None:
        self.logs: dict[int, list[str]] = {}
        self.connects: list[tuple[object, list[str]]] = []  # (engine, statements)

    def watch(self, engine) -> None:
        def first(dbapi_connection, _record) -> None:
            log = self.logs[id(dbapi_connection)] = []
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.set_trace_callback(log.append)
            else:
                _CountingCursor.log[id(dbapi_connection)] = log
                dbapi_connection.cursor_factory = _CountingCursor

        def last(dbapi_connection, _record) -> None:
            self.connects.append((engine, list(self.logs[id(dbapi_connection)])))

        event.listen(engine, "connect", first, insert=True)
        event.listen(engine, "connect", last)


@pytest.fixture
def first_connects(monkeypatch) -> FirstConnects:
    return watch_builds(monkeypatch, FirstConnects())


def _engine_of(app, info):
    with app.app_context(), _cache(app).lease(info) as engine:
        return engine


def _identity_only(statements: list[str], backend: str) -> bool:
    """The statements of a connection's set-up are the hardening (SQLite) and the identity
    read, nothing else: no dialect initialisation, no BEGIN/COMMIT."""
    if backend == "sqlite":
        return [s for s in statements if not s.startswith("PRAGMA")] == [IDENTITY_SQL]
    return statements == [IDENTITY_SQL]


def test_second_engine_on_a_server_reuses_the_initialised_dialect(
        make_app, backend, password_hash, first_connects):
    app = make_app(backend)
    a, b, c = _make_tenants(app, 3, password_hash)
    _touch(app, a)
    _touch(app, b)
    _touch(app, c)
    (engine_a, first), (engine_b, second), (engine_c, third) = first_connects.connects
    assert engine_b.dialect is engine_a.dialect is engine_c.dialect
    assert engine_b.dialect.server_version_info is not None
    assert len(first) > len(second)  # the first engine initialised the dialect
    assert _identity_only(second, backend) and _identity_only(third, backend), second
    # The dialect's own initialisation (in a transaction it rolls back), then the identity
    # read, alone and in autocommit.
    assert first[-1] == IDENTITY_SQL and first.count(IDENTITY_SQL) == 1
    if backend == "postgresql":
        assert first[0] == "BEGIN" and first.count("BEGIN") == 1


def test_identity_check_still_refuses_a_wrong_database(make_app, backend, password_hash,
                                                      first_connects):
    """On a shared, initialised dialect, an engine pointed at another tenant's database is
    refused at its first connection, and the connection is not handed out."""
    from tenants.engines import TenantIdentityError

    app = make_app(backend)
    a, b = _make_tenants(app, 2, password_hash)
    _touch(app, a)
    forged = dataclasses.replace(b, database_name=a.database_name,
                                 role_name=a.role_name,
                                 role_password_encrypted=a.role_password_encrypted)
    with app.app_context(), _cache(app).lease(forged) as engine:
        assert engine.dialect is _engine_of(app, a).dialect
        with pytest.raises(TenantIdentityError):
            engine.connect()
        assert engine.pool.checkedout() == 0
    _touch(app, b)  # the real b is served


def test_same_revision_tenants_share_one_compiled_cache(make_app, backend, password_hash):
    from qalitel.users.models import User
    from tenants.context import tenant_context

    app = make_app(backend)
    a, b = _make_tenants(app, 2, password_hash)
    assert a.schema_revision == b.schema_revision
    statement = select(User.__table__.c.email).where(User.__table__.c.email == "x@example.org")
    seen = []
    with app.app_context():
        for info in (a, b, a):
            with tenant_context(info) as ctx:
                result = ctx.session.connection().execute(statement)
                seen.append((result.context.cache_hit, ctx.engine))
    (hit_a, engine_a), (hit_b, engine_b), (hit_a2, _) = seen
    dialect = engine_a.dialect
    assert (hit_a, hit_b, hit_a2) == (dialect.CACHE_MISS, dialect.CACHE_HIT, dialect.CACHE_HIT)
    cache_a = engine_a.get_execution_options()["compiled_cache"]
    assert cache_a is engine_b.get_execution_options()["compiled_cache"]
    assert engine_a is not engine_b and engine_b.dialect is dialect


def test_compiled_cache_never_crosses_a_schema_revision(make_app, backend, password_hash):
    """B's registry revision changes (a rolling migrate): B's engine is rebuilt on another
    dialect and another cache; nothing A compiled is served to B, and the other way round."""
    from core.db import db
    from qalitel.users.models import User
    from tenants.context import tenant_context
    from tenants.registry import Tenant
    from tenants.resolution import load_tenant

    app = make_app(backend)
    a, b = _make_tenants(app, 2, password_hash)
    statement = select(User.__table__.c.email).where(User.__table__.c.email == "y@example.org")
    users = select(User).where(User.email == "z@example.org")

    def run(info):
        with tenant_context(info) as ctx:
            hit = ctx.session.connection().execute(statement).context.cache_hit
            ctx.session.execute(users).all()
            return hit, ctx.engine

    with app.app_context():
        hit_a, engine_a = run(a)
        hit_b, engine_b = run(b)
        assert hit_b == engine_a.dialect.CACHE_HIT and engine_b.dialect is engine_a.dialect
        db.session.execute(update(Tenant).where(Tenant.id == b.id)
                           .values(schema_revision="r2-rolling"))
        db.session.commit()
        b2 = load_tenant(b.slug)
        assert b2 is not None and b2.schema_revision == "r2-rolling"
        hit_b2, engine_b2 = run(b2)
        hit_a2, _ = run(a)
    assert engine_b2 is not engine_b and _cache(app).disposed >= 1
    cache_a = engine_a.get_execution_options()["compiled_cache"]
    cache_b2 = engine_b2.get_execution_options()["compiled_cache"]
    assert cache_b2 is not cache_a and engine_b2.dialect is not engine_a.dialect
    assert hit_b2 == engine_b2.dialect.CACHE_MISS and hit_a2 == engine_a.dialect.CACHE_HIT
    assert all(key[0] is engine_a.dialect for key in cache_a)
    assert all(key[0] is engine_b2.dialect for key in cache_b2)
    assert len(cache_b2) >= 2  # b2 compiled its own statements


def test_load_tenant_is_one_platform_query(platform_app, backend, password_hash):
    """The registry row and its server (PostgreSQL) in one statement, per request."""
    from core.db import db
    from tenants.resolution import load_tenant

    (a,) = _make_tenants(platform_app, 1, password_hash)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with platform_app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            info = load_tenant(a.slug)
            missing = load_tenant("no-such-tenant")
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert info == a and missing is None
    assert len(statements) == 2, statements
    assert (info.server_url_encrypted is not None) is (backend == "postgresql")
    if backend == "postgresql":
        assert "database_servers" in statements[0]
