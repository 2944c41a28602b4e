"""What the tenant engines of one database server and one schema revision share: the
dialect initialised by the first of them, and one compiled-SQL cache.

Why sharing is safe:

* A compiled statement depends on the dialect and the statement (tables, columns, types as
  the models declare them), never on the data or the credentials: SQLAlchemy itself keys its
  caches by ``(dialect, statement cache key, ...)`` and keeps the ORM's flush statements in
  one cache per mapper for every engine of the process.
* One :class:`Kit` per ``(server, schema revision)``: tenants on one server at one revision
  get the same dialect object and the same LRU, so a statement is compiled once for all of
  them. A tenant at another revision (a rolling ``tenants migrate``) gets another kit, hence
  another dialect and another LRU: every SQLAlchemy cache key then differs (the dialect is in
  each one), the mapper caches included, so nothing compiled for one revision is served at
  another. When a tenant's registry revision changes, its engine is rebuilt on the new kit
  (``tenants.engines.EngineCache``).
* The dialect's first-connect initialisation (server version, default schema, isolation
  level, ``standard_conforming_strings``...) reads properties of the server, the same for
  every tenant database on it: all are cloned from one template and provisioning sets no
  per-database option. An in-place major upgrade of a server needs the web processes
  restarted (a server moved to a new address is a new kit anyway).

What sharing does not change, and what it costs:

* A cached ``Compiled`` keeps the statement it was first compiled from, bound values
  included (SQLAlchemy's own design, per engine before): one tenant's search words can stay
  in this process's memory, reachable from another tenant's engine object, until the LRU
  drops them. They are never sent or shown: each execution binds its own parameters, and
  every value the app passes is a bound parameter (no literal is rendered into cached SQL).
  The process memory of a web worker was already shared by every tenant it serves.
* Dialect-level events (``do_execute``, ``do_connect``, ``do_setinputsizes``) registered on
  one tenant engine fire for every engine of its kit: register nothing on a tenant engine's
  dialect; per-tenant hooks go on the engine or its pool (``connect``, as the identity
  check does).
* :func:`engine_on_dialect` assembles an engine from SQLAlchemy's parts as ``create_engine``
  does (``create_connect_args``, ``on_connect_url``, ``_builtin_onconnect``): the
  ``sqlalchemy`` bound in ``pyproject.toml`` is the range it is tested on
  (``tests/test_engine_sharing.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import URL, Engine, event
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import LRUCache

COMPILED_CACHE_SIZE = 1000
"""Statements per kit (SQLAlchemy's default per engine is 500; the app has a few hundred)."""
MAX_KITS = 64
"""Kits kept per process (servers × revisions in use); the oldest is forgotten first."""


def server_key(url: URL) -> tuple[Any, ...]:
    """What identifies a database server in a tenant URL: driver, host, port, options
    (neither the tenant's role nor its database)."""
    return (url.drivername, url.host, url.port, tuple(sorted(url.query.items())))


@dataclass(eq=False)
class Kit:
    """The shared parts of the engines of one server at one schema revision."""

    key: tuple[Any, ...]
    compiled_cache: LRUCache = field(default_factory=lambda: LRUCache(COMPILED_CACHE_SIZE))
    dialect: Dialect | None = None
    """The dialect of the first engine whose first connection was initialised and proved
    to be a tenant's database; None until then."""


class Kits:
    """The kits of one process (one per engine cache), bounded, thread-safe."""

    def __init__(self, maxsize: int = MAX_KITS) -> None:
        self.maxsize = maxsize
        self._kits: OrderedDict[tuple[Any, ...], Kit] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kits)

    def kit(self, url: URL, schema_revision: str | None) -> Kit:
        key = (server_key(url), schema_revision)
        with self._lock:
            found = self._kits.get(key)
            if found is None:
                found = self._kits[key] = Kit(key)
                while len(self._kits) > self.maxsize:
                    self._kits.popitem(last=False)
            else:
                self._kits.move_to_end(key)
            return found

    def adopt(self, kit: Kit, dialect: Dialect) -> None:
        """Make ``dialect`` (initialised) the kit's, unless another engine's already is."""
        with self._lock:
            if kit.dialect is None:
                kit.dialect = dialect

    def clear(self) -> None:
        with self._lock:
            self._kits.clear()


def engine_on_dialect(dialect: Dialect, url: URL, *, pool: dict[str, Any],
                      connect_args: dict[str, Any]) -> Engine:
    """An engine on an initialised ``dialect``: what ``create_engine`` builds, without a
    dialect of its own and so without its first-connect ``initialize`` queries.

    Its pool connects with ``url``'s credentials and runs the dialect's per-connection setup
    (``on_connect_url``), as ``create_engine``'s does.
    """
    cargs, cparams = dialect.create_connect_args(url)
    params = {**cparams, **connect_args}

    def connect(_record: object = None) -> Any:
        return dialect.connect(*cargs, **params)

    queue = QueuePool(connect, dialect=dialect, **pool)
    engine = Engine(queue, dialect, url, query_cache_size=0)
    setup = dialect.on_connect_url(url)
    if setup is not None:
        event.listen(queue, "connect", lambda dbapi_connection, _record: setup(dbapi_connection))
    builtin = dialect._builtin_onconnect()  # an isolation_level argument; none is given here
    if builtin is not None:
        event.listen(queue, "connect", builtin)
    return engine
