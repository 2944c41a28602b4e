"""PostgreSQL administration used by provisioning: admin connections, names, locks.

Identifiers only ever reach SQL through ``psycopg2.sql.Identifier``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from sqlalchemy import URL, make_url

TEMPLATE_OWNER = "qalitel_template_owner"


def libpq_dsn(url: str | URL, database: str | None = None) -> str:
    """Render an SQLAlchemy URL as a libpq URI (optionally for another database)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError("not a PostgreSQL URL")
    parsed = parsed.set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def admin_connection(url: str | URL, database: str | None = None) -> Iterator[PgConnection]:
    """An autocommit superuser connection (CREATE DATABASE cannot run in a transaction)."""
    conn = psycopg2.connect(libpq_dsn(url, database), connect_timeout=10,
                            application_name="qalitel-admin")
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(conn: PgConnection, name: str, *, shared: bool = False) -> Iterator[None]:
    key = lock_key(name)
    func = "pg_advisory_lock_shared" if shared else "pg_advisory_lock"
    unlock = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(func)), (key,))
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(unlock)), (key,))


def database_exists(conn: PgConnection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cur.fetchone() is not None


def role_exists(conn: PgConnection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        return cur.fetchone() is not None


def drop_database(conn: PgConnection, name: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def drop_role(conn: PgConnection, name: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def ensure_template_owner(conn: PgConnection) -> None:
    """The NOLOGIN role owning the template's objects, handed over at each clone."""
    if not role_exists(conn, TEMPLATE_OWNER):
        with conn.cursor() as cur, suppress(psycopg2.errors.DuplicateObject):
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(
                sql.Identifier(TEMPLATE_OWNER)))


def drop_prefixed(url: str | URL, prefix: str) -> int:
    """Drop every database, then every role, whose name starts with ``prefix`` (benchmarks and
    test clean-up); returns how many were dropped."""
    dropped = 0
    with admin_connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
        for (name,) in cur.fetchall():
            drop_database(conn, name)
            dropped += 1
        cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,))
        for (name,) in cur.fetchall():
            drop_role(conn, name)
            dropped += 1
    return dropped
