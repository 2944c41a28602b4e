"""PostgreSQL steps of provisioning: the tenant's own role, the clone of the template, the
hand-over of its objects, the identity row and the first rows through the tenant's login.

One admin connection creates the role and the clone (no existence checks: duplicates fail);
a second one, inside the clone, hands the objects over and writes the identity row in one
transaction while the tenant's own connection opens in parallel; the first rows go through
that plain connection, identity checked (no engine, no dialect start-up queries).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import make_url

from core.config import Settings
from core.crypto import encrypt
from tenants import pg
from tenants.engines import check_identity
from tenants.hooks import Row
from tenants.registry import DatabaseServer, ProvisioningError, Tenant
from tenants.rows import PG_DIALECT, insert_row
from tenants.servers import server_url
from tenants.templates import migrate_pg_template

CLONE_STRATEGY = "WAL_LOG"
"""``CREATE DATABASE … STRATEGY`` (PostgreSQL 15+). FILE_COPY forces two checkpoints of the
whole server per clone; WAL_LOG copies the small (~8 MB) template through the WAL and is
2-5× faster here (``bench/bench_provision.py --strategy file_copy`` to compare)."""


def create_postgres(settings: Settings, tenant: Tenant, server: DatabaseServer,
                    admin_conn: Future, rows: list[Row], step: Callable[[str], None],
                    undo: list[Callable[[], None]]) -> None:
    migrate_pg_template(settings, server)
    step("template")
    url = server_url(settings, server)
    database = role = tenant.database_name
    password = secrets.token_urlsafe(32)
    tenant.role_name = role
    tenant.role_password_encrypted = encrypt(settings.encryption_key, password)
    exists = f"a database or role named {role!r} already exists; run `qalitel tenants sweep`"
    with contextlib.ExitStack() as stack:
        stack.callback(close_when_done, admin_conn)
        conn = admin_conn.result()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT CONNECTION LIMIT %s")
                            .format(sql.Identifier(role)),
                            (settings.engine_cache_size * settings.tenant_pool_size * 4,))
        except psycopg2.errors.DuplicateObject:
            raise ProvisioningError(exists) from None
        undo.append(lambda: drop_pg(url, None, role))
        step("role")
        strategy = (sql.SQL(" STRATEGY {}").format(sql.SQL(CLONE_STRATEGY))
                    if conn.server_version >= 150000 else sql.SQL(""))
        lock = pg.advisory_lock(conn, f"template:{settings.template_database}", shared=True)
        try:
            with lock, conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}{}").format(
                    sql.Identifier(database), sql.Identifier(settings.template_database),
                    sql.Identifier(role), strategy))
        except psycopg2.errors.DuplicateDatabase:
            raise ProvisioningError(exists) from None
        undo.append(lambda: drop_pg(url, database, None))
        with conn.cursor() as cur:  # before anybody can connect on PUBLIC's privilege
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(database)))
        # The server stretches the password (SCRAM) while the next session starts.
        login = background(_enable_login, conn, role, password)
        try:
            tconn = stack.enter_context(pg.admin_connection(url, database))
        finally:
            login.result()
        conn.close()
        step("database")
        # This session built the clone's catalog cache file: the tenant's own session now
        # starts cheaply, in parallel with the hand-over.
        own = background(psycopg2.connect, pg.libpq_dsn(
            make_url(url).set(username=role, password=password), database),
            connect_timeout=10, application_name=f"qalitel:{tenant.slug}"[:63])
        try:
            tconn.autocommit = False
            with tconn.cursor() as cur:
                cur.execute(sql.SQL("REASSIGN OWNED BY {owner} TO {role}; "
                                    "DROP OWNED BY {owner}").format(
                    owner=sql.Identifier(pg.TEMPLATE_OWNER), role=sql.Identifier(role)))
                step("privileges")
                cur.execute("INSERT INTO tenant_identity (id, slug, tenant_uid) "
                            "VALUES (1, %s, %s)", (tenant.slug, tenant.uid))
            step("identity")
            tconn.commit()
            _write_rows(own.result(), tenant, rows)
        finally:
            close_when_done(own)


def _enable_login(conn: Any, role: str, password: str) -> None:
    """Give the role ``LOGIN`` and its password (stretched by the server: a few ms of CPU)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(
            sql.Identifier(role)), (password,))


def _write_rows(conn: Any, tenant: Tenant, rows: list[Row]) -> None:
    """Through the tenant's own login: check the identity row, then insert the first rows."""
    check_identity(conn, tenant.uid, tenant.slug)
    with conn.cursor() as cur:
        for table, values in rows:
            insert_row(cur, table, values, PG_DIALECT)
    conn.commit()


def background(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """Run ``function`` on a thread of its own (network waits release the GIL)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # handed to whoever reads the result
            future.set_exception(exc)

    threading.Thread(target=run, name="provision", daemon=True).start()
    return future


def admin_connect(url: str) -> Any:
    conn = psycopg2.connect(pg.libpq_dsn(url), connect_timeout=10,
                            application_name="qalitel-admin")
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    return conn


def close_when_done(future: Future | None) -> None:
    """Close the connection a background connect returns, now or whenever it arrives."""

    def close(done: Future) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    if future is not None:
        future.add_done_callback(close)


def drop_pg(url: str, database: str | None, role: str | None) -> None:
    with pg.admin_connection(url) as conn:
        if database:
            pg.drop_database(conn, database)
        if role:
            pg.drop_role(conn, role)
