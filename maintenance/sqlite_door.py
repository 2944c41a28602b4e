"""A maintenance grant's connection to a SQLite tenant file, fenced by the allow-list.

The file is opened ``mode=ro`` with ``PRAGMA query_only=ON`` for the read scope (``mode=rw``
for read-write), and :func:`authorizer` decides every statement SQLite compiles on that
connection (``sqlite3.Connection.set_authorizer``): reads of columns the allow-list does not
name, any write but an ``UPDATE`` of a writable column by a read-write grant, ``INSERT``,
``DELETE``, DDL, ``ATTACH`` (refused by :func:`tenants.engines.deny_attach`, the app's own
rule) and pragmas other than schema introspection are all denied ("not authorized"), so
direct SQL on this connection is held to the same list as the console. Each connection is
checked to be the tenant's by :func:`tenants.engines.check_identity`, as the app's are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from maintenance.allow_list import RULES, readable, writable
from tenants.engines import check_identity, deny_attach

SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master",
                           "sqlite_temp_schema"})
#: Pragmas that only describe the schema (the reflection SQLAlchemy does).
INTROSPECTION_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info",
                                   "index_xinfo", "foreign_key_list"})
#: Pragmas read (never set) by the driver and SQLAlchemy.
READ_PRAGMAS = frozenset({"read_uncommitted", "foreign_keys", "query_only", "busy_timeout"})
ALWAYS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT,
                    sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE})

Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]


def authorizer(*, write: bool) -> Authorizer:
    """The allow-list as a SQLite authorizer; ``write`` for a read-write grant."""

    def decide(action: int, arg1: str | None, arg2: str | None, _db: str | None,
               _trigger: str | None) -> int:
        if deny_attach(action) == sqlite3.SQLITE_DENY:
            return sqlite3.SQLITE_DENY
        if action in ALWAYS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            table, column = arg1 or "", arg2 or ""
            if table in SCHEMA_TABLES or readable(table, column) or \
                    (column == "" and table in RULES):
                return sqlite3.SQLITE_OK
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_UPDATE:
            return sqlite3.SQLITE_OK if write and writable(arg1 or "", arg2 or "") \
                else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in INTROSPECTION_PRAGMAS or (name in READ_PRAGMAS and arg2 is None):
                return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return decide


def engine(path: Path, *, write: bool, uid: str, slug: str) -> Engine:
    """A pool-less engine on the tenant file, every connection fenced and checked to be this
    tenant's (:func:`tenants.engines.check_identity`, as the app's own engines are)."""
    uri = f"{path.resolve().as_uri()}?mode={'rw' if write else 'ro'}"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5)
        conn.execute("PRAGMA foreign_keys=ON")
        if not write:
            conn.execute("PRAGMA query_only=ON")
        conn.set_authorizer(authorizer(write=write))
        try:
            check_identity(conn, uid, slug)
        except BaseException:
            conn.close()
            raise
        return conn

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)
