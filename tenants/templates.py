"""The pre-migrated templates new tenant databases are cloned from: a SQLite file named by the
head revision, and one template database per PostgreSQL server (migrated as its NOLOGIN
owner, under the exclusive advisory lock provisioning takes in shared mode)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from psycopg2 import sql
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.pool import NullPool

from core.config import Settings
from core.db import db
from tenants import migrations, pg
from tenants.engines import harden_sqlite
from tenants.registry import DatabaseServer
from tenants.servers import server_url


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_template_path(settings: Settings) -> Path:
    return settings.sqlite_tenant_dir / f".template-{migrations.head('tenant')}.sqlite3"


def ensure_sqlite_template(settings: Settings) -> Path:
    """The SQLite template file at head; its name carries the revision, so no check is needed."""
    path = sqlite_template_path(settings)
    if path.exists():
        return path
    with _file_lock(settings.sqlite_tenant_dir / ".template.lock"):
        if path.exists():
            return path
        tmp = path.with_name(path.name + f".tmp-{secrets.token_hex(4)}")
        try:
            engine = create_engine(f"sqlite:///{tmp}", poolclass=NullPool)
            event.listen(engine, "connect", lambda c, _r: harden_sqlite(c, wal=False))
            with engine.begin() as conn:
                migrations.upgrade(conn, "tenant")
            engine.dispose()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        for old in settings.sqlite_tenant_dir.glob(".template-*.sqlite3"):
            if old != path:
                old.unlink(missing_ok=True)
    return path


def migrate_pg_template(settings: Settings, server: DatabaseServer, *, force: bool = False) -> str:
    """Bring the server's template database to head under the exclusive template lock."""
    target = migrations.head("tenant")
    if server.template_revision == target and not force:
        return target
    url = server_url(settings, server)
    name = settings.template_database
    with pg.admin_connection(url) as conn, pg.advisory_lock(conn, f"template:{name}"):
        pg.ensure_template_owner(conn)
        if not pg.database_exists(conn, name):
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(name)))
        # The template owner owns schema public, so each clone's REASSIGN OWNED hands it to
        # the tenant role: a NOINHERIT role gets nothing through pg_database_owner, and
        # later upgrades (run as the tenant role) must be able to create tables.
        with pg.admin_connection(url, name) as tconn, tconn.cursor() as cur:
            cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(
                sql.Identifier(pg.TEMPLATE_OWNER)))
        engine = create_engine(make_url(url).set(database=name), poolclass=NullPool)
        try:
            with engine.begin() as sconn:
                sconn.execute(text(f'SET ROLE "{pg.TEMPLATE_OWNER}"'))
                revision = migrations.upgrade(sconn, "tenant")
        finally:
            engine.dispose()
    server.template_revision = revision
    db.session.commit()
    return revision or target
