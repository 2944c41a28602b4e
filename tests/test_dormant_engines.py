"""Dormant engines: an evicted idle engine has its pool drained (connections closed) and is
kept, without connections, in a bounded LRU; the tenant's next request revives it (one
connect, no engine build). Invalidation drops dormant engines too, and an engine whose tenant
changed is never revived. Live engines stay within ``engine_cache_size``."""

from __future__ import annotations

import dataclasses

from tests.test_engine_sharing import _engine_of, _identity_only, first_connects  # noqa: F401 - a fixture
from tests.test_engines import (  # noqa: F401 - opened: a fixture
    _cache,
    _is_closed,
    _make_tenants,
    _pg_connections,
    _settle,
    _touch,
    opened,
)


def test_evicted_engine_goes_dormant_and_is_revived(make_app, backend, password_hash,
                                                   first_connects, opened):  # noqa: F811
    app = make_app(backend, engine_cache_size=1, dormant_engine_cache_size=4)
    a, b = _make_tenants(app, 2, password_hash)
    cache = _cache(app)
    raw_a = _touch(app, a)
    engine_a = _engine_of(app, a)
    _touch(app, b)  # evicts a: drained, kept dormant
    assert _is_closed(raw_a) and cache.is_dormant(a.uid) and a.uid not in cache
    assert (cache.live, cache.dormant, cache.checked_out(), opened.open) == (1, 1, 1, 1)
    if backend == "postgresql":
        assert _settle(lambda: _pg_connections([a, b]) == {a.slug: 0, b.slug: 1})
    raw_a2 = _touch(app, a)  # revived: b goes dormant
    assert _engine_of(app, a) is engine_a and raw_a2 is not raw_a
    assert (cache.created, cache.revived, cache.evicted) == (2, 1, 2)
    assert cache.is_dormant(b.uid) and not cache.is_dormant(a.uid)
    assert (cache.live, cache.checked_out(), opened.open) == (1, 1, 1)
    engine, statements = first_connects.connects[-1]
    assert engine is engine_a and _identity_only(statements, backend), statements


def test_dormant_engines_are_bounded(make_app, backend, password_hash):
    app = make_app(backend, engine_cache_size=1, dormant_engine_cache_size=1)
    a, b, c = _make_tenants(app, 3, password_hash)
    cache = _cache(app)
    for info in (a, b, c):
        _touch(app, info)
    assert cache.dormant == 1 and cache.is_dormant(b.uid) and not cache.is_dormant(a.uid)
    _touch(app, a)  # forgotten: built again
    assert (cache.created, cache.revived) == (4, 0)


def test_dormant_engines_turned_off(make_app, backend, password_hash):
    off = make_app(backend, engine_cache_size=1, dormant_engine_cache_size=0)
    d, e = _make_tenants(off, 2, password_hash)
    _touch(off, d)
    _touch(off, e)
    _touch(off, d)
    assert (_cache(off).dormant, _cache(off).created, _cache(off).revived) == (0, 3, 0)


def test_invalidation_drops_dormant_engines(make_app, backend, password_hash):
    """Suspension (``set_status``), and ``invalidate``/``clear`` as restore, deletion and
    closure call them: the dormant engine is gone, the next request builds a new one."""
    from tenants.registry import TenantStatus
    from tenants.service import set_status

    app = make_app(backend, engine_cache_size=1, dormant_engine_cache_size=8)
    a, b, c = _make_tenants(app, 3, password_hash)
    cache = _cache(app)
    for info in (a, b, c):
        _touch(app, info)
    assert cache.is_dormant(a.uid) and cache.is_dormant(b.uid)
    with app.app_context():
        set_status(a.slug, TenantStatus.SUSPENDED)
        set_status(a.slug, TenantStatus.ACTIVE)
    assert not cache.is_dormant(a.uid) and cache.is_dormant(b.uid)
    cache.invalidate(b.uid)
    assert not cache.is_dormant(b.uid)
    created = cache.created
    _touch(app, a)
    _touch(app, b)
    assert cache.created == created + 2 and cache.revived == 0
    cache.clear()
    assert (len(cache), cache.dormant, cache.live, cache.checked_out()) == (0, 0, 0, 0)


def test_a_changed_tenant_is_never_served_a_dormant_or_cached_engine(make_app, backend,
                                                                     password_hash):
    """The registry row changed under the process (another process migrated, moved or
    re-keyed the tenant): the old engine, live or dormant, is not reused."""
    app = make_app(backend, engine_cache_size=1, dormant_engine_cache_size=4)
    a, b = _make_tenants(app, 2, password_hash)
    cache = _cache(app)
    _touch(app, a)
    engine_a = _engine_of(app, a)
    a_next = dataclasses.replace(a, schema_revision="another-revision")
    _touch(app, a_next)  # live and stale: rebuilt
    assert _engine_of(app, a_next) is not engine_a and cache.created == 2
    _touch(app, b)  # a_next goes dormant
    assert cache.is_dormant(a.uid)
    _touch(app, a)  # the dormant engine is a_next's: not revived for a
    assert cache.revived == 0 and cache.created == 4
    assert cache.live == 1 and cache.checked_out() == 1
