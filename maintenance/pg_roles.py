"""The PostgreSQL login role of a maintenance grant: created, cut off, dropped.

Each grant gets ``<pg_name_prefix>m_<random>`` (``GRANT_ROLE_INFIX``; never a tenant's name,
which cannot hold ``_``) with a random password kept encrypted, ``VALID UNTIL`` the end of the
window, ``CONNECTION LIMIT`` 2, ``CONNECT`` on that tenant's database only, ``USAGE`` on schema
``public``, and column-level privileges computed from :mod:`maintenance.allow_list`: ``SELECT``
on the readable columns of the listed tables, plus — read-write — ``UPDATE`` on their writable
columns. Never ``INSERT``, ``DELETE``, ``TRUNCATE`` or ownership, nothing on a table the list
does not name (``alembic_version``), nothing on credentials. Revocation and expiry take
``LOGIN`` away, terminate the role's open sessions, strip its privileges (``DROP OWNED BY``
inside the tenant database), and terminate again anything that connected in between.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql

from core import config
from core.crypto import encrypt
from maintenance.allow_list import RULES
from maintenance.models import Scope
from maintenance.requests import aware
from tenants import pg
from tenants.provisioning import GRANT_ROLE_INFIX, server_url
from tenants.registry import Tenant

log = logging.getLogger(__name__)

CONNECTION_LIMIT = 2
#: How long a revocation waits for the terminated sessions to be gone.
TERMINATE_WAIT_S = 2.0


def _server_url(tenant: Tenant) -> str:
    if tenant.server is None:
        raise RuntimeError(f"tenant {tenant.slug} has no database server")
    return server_url(config.settings(), tenant.server)


def privileges(present: dict[str, set[str]], scope: Scope) -> list[tuple[str, str, list[str]]]:
    """(privilege, table, columns) the allow-list gives ``scope`` on the tables present."""
    granted = []
    for table, rule in sorted(RULES.items()):
        columns = present.get(table, set())
        if rule.read & columns:
            granted.append(("SELECT", table, sorted(rule.read & columns)))
        if scope is Scope.READ_WRITE and rule.write & columns:
            granted.append(("UPDATE", table, sorted(rule.write & columns)))
    return granted


def _grant_columns(cur: Any, role: str, scope: Scope) -> None:
    cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'")
    present: dict[str, set[str]] = {}
    for table, column in cur.fetchall():
        present.setdefault(table, set()).add(column)
    for privilege, table, columns in privileges(present, scope):
        cur.execute(sql.SQL("GRANT {} ({}) ON TABLE {} TO {}").format(
            sql.SQL(privilege), sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier("public", table), sql.Identifier(role)))


def create_role(tenant: Tenant, scope: Scope, ends: datetime) -> tuple[str, str]:
    """A login role for one grant on ``tenant``'s database; returns its name and its
    encrypted password. Undone (role dropped) if any step fails."""
    settings = config.settings()
    role = f"{settings.pg_name_prefix}{GRANT_ROLE_INFIX}{secrets.token_hex(6)}"
    if len(role.encode()) > 63:
        raise RuntimeError("pg_name_prefix is too long for grant role names")
    password = secrets.token_urlsafe(32)
    url = _server_url(tenant)
    ident = sql.Identifier(role)
    created = False
    try:
        with pg.admin_connection(url) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB "
                                "NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %s "
                                "VALID UNTIL %s CONNECTION LIMIT %s").format(ident),
                        (password, aware(ends).isoformat(), CONNECTION_LIMIT))
            created = True
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(tenant.database_name), ident))
        with pg.admin_connection(url, tenant.database_name) as conn:
            conn.autocommit = False
            with conn.cursor() as cur:
                cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
                _grant_columns(cur, role, scope)
            conn.commit()
    except BaseException:
        if created:
            try:
                drop_role(tenant, role)
            except Exception:
                log.exception("could not drop half-made grant role %s", role)
        raise
    return role, encrypt(settings.encryption_key, password)


def _terminate(cur: Any, role: str) -> int:
    """Signal every session of ``role`` to terminate, then wait (a few ms, at most
    ``TERMINATE_WAIT_S``) until none is left; returns how many were signalled."""
    cur.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
                (role,))
    signalled = int(cur.fetchone()[0])
    deadline = time.monotonic() + TERMINATE_WAIT_S
    while signalled:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,))
        if cur.fetchone()[0] == 0:
            break
        if time.monotonic() > deadline:
            log.warning("sessions of %s still there %.1f s after termination", role,
                        TERMINATE_WAIT_S)
            break
        time.sleep(0.005)
    return signalled


def disable_role(tenant: Tenant, role: str) -> None:
    """NOLOGIN, open sessions terminated, privileges stripped, stragglers terminated."""
    url = _server_url(tenant)
    ident = sql.Identifier(role)
    with pg.admin_connection(url) as conn, conn.cursor() as cur:
        try:
            cur.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(ident))
        except psycopg2.errors.UndefinedObject:
            return
        _terminate(cur, role)
        try:
            with pg.admin_connection(url, tenant.database_name) as tconn, \
                    tconn.cursor() as tcur:
                tcur.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        except psycopg2.OperationalError:  # the tenant database is gone: nothing to strip
            log.warning("privileges of %s not stripped: %s unreachable", role,
                        tenant.database_name)
        _terminate(cur, role)


def drop_role(tenant: Tenant, role: str) -> bool:
    """Remove a grant role entirely (its privileges first); whether it was still there."""
    disable_role(tenant, role)
    with pg.admin_connection(_server_url(tenant)) as conn:
        existed = pg.role_exists(conn, role)
        pg.drop_role(conn, role)
    return existed
