"""Provisioning: a database per tenant, cloned from a pre-migrated template, all or nothing.

Order of work, each step named for fault injection (``fault=`` callback, used by tests):

``registry``   a registry row in state ``provisioning`` (the unique slug serialises racers)
``template``   the template is at the head revision (migrated under an exclusive lock)
``role``       PostgreSQL: a role of the tenant's own; ``LOGIN`` and its random password
               (kept encrypted) are given once the clone exists, overlapping the next connect
``database``   the clone (``CREATE DATABASE … TEMPLATE … OWNER``, then every database
               privilege revoked from PUBLIC) / SQLite: the file copy
``privileges`` PostgreSQL: objects handed to the tenant role, the template owner's dropped
``identity``   the identity row naming the tenant
``admin``      the first client admin, written through the tenant's own credentials
``activate``   the registry row becomes ``active``

A failure at any step undoes every earlier one (database, role, file, registry row).

Speed (``bench/bench_provision.py``): on PostgreSQL one admin connection creates the role and
the clone (no existence checks: duplicates fail), a second one, inside the clone, hands the
objects over and writes the identity row in one transaction while the tenant's own connection
is opened in parallel; the first admin goes through that plain connection, identity checked
(no engine, no dialect start-up queries). SQLite writes identity and admin in one transaction
and syncs the file once. Registry rows are not read back after the first commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import Table, create_engine, event, insert, make_url, select, text
from sqlalchemy.dialects import postgresql as pg_dialects
from sqlalchemy.dialects import sqlite as sqlite_dialects
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from core.config import Settings
from core.crypto import decrypt, encrypt
from core.db import db
from core.validation import InvalidInput, check_password, in_english
from tenants import migrations, pg
from tenants.engines import check_identity, harden_sqlite, sqlite_path
from tenants.registry import Backend, DatabaseServer, Tenant, TenantStatus, validate_slug

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s<>\"',;\x00-\x1f\x7f]{1,64}"
                      r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
STEPS = ("registry", "template", "role", "database", "privileges", "identity", "admin",
         "activate")
CLONE_STRATEGY = "WAL_LOG"
#: Maintenance grant roles are ``<prefix>m_<random>`` (maintenance.grants): never a
#: tenant's name (slugs have no ``_``), never swept as an orphan.
GRANT_ROLE_INFIX = "m_"
"""``CREATE DATABASE … STRATEGY`` (PostgreSQL 15+). FILE_COPY forces two checkpoints of the
whole server per clone; WAL_LOG copies the small (~8 MB) template through the WAL and is
2-5× faster here (``bench/bench_provision.py --strategy file_copy`` to compare)."""
_PG_DIALECT = pg_dialects.psycopg2.dialect()
_SQLITE_DIALECT = sqlite_dialects.pysqlite.dialect(paramstyle="named")


class ProvisioningError(RuntimeError):
    """Provisioning failed; nothing it created is left behind."""


@dataclass
class ProvisionResult:
    tenant: Tenant
    admin_email: str
    admin_password: str | None
    generated_password: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return sum(self.timings.values())

    @property
    def without_hash_ms(self) -> float:
        return self.total_ms - self.timings.get("hash", 0.0)


def validate_email(email: object) -> str:
    if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.fullmatch(email.strip()):
        raise ProvisioningError(f"invalid email address {str(email)[:80]!r}")
    return email.strip().lower()


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Control, format (bidi overrides, zero-width), surrogate and line/paragraph separators."""


def validate_name(name: object, what: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise ProvisioningError(f"{what} is required")
    cleaned = name.strip()
    if len(cleaned) > 200 or any(unicodedata.category(c) in _UNPRINTABLE for c in cleaned):
        raise ProvisioningError(f"{what} must be at most 200 printable characters")
    return cleaned


def generate_password() -> str:
    return secrets.token_urlsafe(15)


# ---------------------------------------------------------------- servers


def server_for_new_tenant(settings: Settings, backend: str | None,
                          server_name: str | None) -> DatabaseServer | None:
    """The PostgreSQL server a new tenant goes to, or None for SQLite."""
    if backend == Backend.SQLITE.value:
        return None
    if server_name:
        server = db.session.execute(
            select(DatabaseServer).where(DatabaseServer.name == server_name)).scalar_one_or_none()
        if server is None:
            raise ProvisioningError(f"no database server named {server_name!r}")
        return server
    if settings.tenant_server_url:
        return ensure_server(settings, "default", settings.tenant_server_url)
    first = select(DatabaseServer).order_by(DatabaseServer.id)
    server = db.session.execute(first).scalars().first()
    if server is None and backend == Backend.POSTGRESQL.value:
        raise ProvisioningError("no PostgreSQL server configured (QALITEL_TENANT_SERVER_URL "
                                "or `qalitel servers add`)")
    return server


def ensure_server(settings: Settings, name: str, url: str) -> DatabaseServer:
    """Register (or update) a PostgreSQL server by name."""
    pg.libpq_dsn(url)
    server = db.session.execute(
        select(DatabaseServer).where(DatabaseServer.name == name)).scalar_one_or_none()
    if server is None:
        server = DatabaseServer(name=name, url_encrypted=encrypt(settings.encryption_key, url))
        db.session.add(server)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return ensure_server(settings, name, url)
    elif decrypt(settings.encryption_key, server.url_encrypted) != url:
        server.url_encrypted = encrypt(settings.encryption_key, url)
        server.template_revision = None
        db.session.commit()
    return server


def server_url(settings: Settings, server: DatabaseServer) -> str:
    return decrypt(settings.encryption_key, server.url_encrypted)


# ---------------------------------------------------------------- templates


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
        engine = create_engine(pg.libpq_dsn(url, name).replace("postgresql://",
                                                               "postgresql+psycopg2://", 1),
                               poolclass=NullPool)
        try:
            with engine.begin() as sconn:
                sconn.execute(text(f'SET ROLE "{pg.TEMPLATE_OWNER}"'))
                revision = migrations.upgrade(sconn, "tenant")
        finally:
            engine.dispose()
    server.template_revision = revision
    db.session.commit()
    return revision or target


# ---------------------------------------------------------------- create


def create_tenant(settings: Settings, slug: str, name: str, admin_email: str,
                  admin_password: str | None = None, *, admin_name: str | None = None,
                  backend: str | None = None, server_name: str | None = None,
                  password_hash: str | None = None,
                  fault: Callable[[str], None] | None = None) -> ProvisionResult:
    """Create a tenant with its own database and first admin; all or nothing."""
    from qalitel.users.service import hash_password

    slug = validate_slug(slug)
    name = validate_name(name)
    admin_email = validate_email(admin_email)
    admin_name = validate_name(admin_name or admin_email.split("@")[0], "admin name")
    generated = admin_password is None
    if admin_password is None:
        admin_password = generate_password()
    try:
        check_password(admin_password)
    except InvalidInput as exc:
        raise ProvisioningError(in_english(exc)) from exc
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(label: str) -> None:
        nonlocal clock
        if fault is not None:
            fault(label)
        now = time.perf_counter()
        timings[label] = timings.get(label, 0.0) + (now - clock) * 1000
        clock = now

    if password_hash is None:
        password_hash = hash_password(admin_password)
    timings["hash"] = (time.perf_counter() - clock) * 1000
    clock = time.perf_counter()

    server = server_for_new_tenant(settings, backend, server_name)
    # PostgreSQL: the admin connection opens while the registry row is written.
    admin_conn = _background(_admin_connect, server_url(settings, server)) if server else None
    tenant = Tenant(slug=slug, name=name, status=TenantStatus.PROVISIONING,
                    backend=Backend.POSTGRESQL if server else Backend.SQLITE,
                    server_id=server.id if server else None,
                    database_name=(f"{settings.pg_name_prefix}{slug}" if server
                                   else f"{slug}.sqlite3"))
    db.session.add(tenant)
    try:
        _commit_keeping_state()
    except IntegrityError:
        db.session.rollback()
        _close_when_done(admin_conn)
        raise ProvisioningError(f"tenant {slug!r} already exists") from None
    undo: list[Callable[[], None]] = []
    try:
        step("registry")
        admin = _first_admin_row(admin_email, admin_name, password_hash)
        if server is not None and admin_conn is not None:
            _create_postgres(settings, tenant, server, admin_conn, admin, step, undo)
        else:
            _create_sqlite(settings, tenant, admin, step, undo)
        step("admin")
        tenant.status = TenantStatus.ACTIVE
        tenant.schema_revision = migrations.head("tenant")
        db.session.commit()
        step("activate")
    except BaseException as exc:
        db.session.rollback()
        _close_when_done(admin_conn)
        _compensate(tenant, undo)
        if isinstance(exc, ProvisioningError):
            raise
        if isinstance(exc, Exception):
            raise ProvisioningError(f"provisioning {slug!r} failed: {exc}") from exc
        raise
    return ProvisionResult(tenant=tenant, admin_email=admin_email,
                           admin_password=admin_password, generated_password=generated,
                           timings=timings)


def _commit_keeping_state() -> None:
    """Commit without expiring loaded rows: the registry row holds exactly what was just
    written, so reading it back (one SELECT for the tenant, one for its server) is waste."""
    session = db.session()
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _compensate(tenant: Tenant, undo: list[Callable[[], None]]) -> None:
    for action in reversed(undo):
        try:
            action()
        except Exception:  # keep undoing; the sweep catches what is left
            log.exception("compensation step failed for tenant %s", tenant.slug)
    try:
        db.session.execute(Tenant.__table__.delete().where(Tenant.id == tenant.id))
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not delete registry row of tenant %s", tenant.slug)
    with contextlib.suppress(Exception):
        db.session.expunge(tenant)


def _create_sqlite(settings: Settings, tenant: Tenant, admin: dict[str, Any],
                   step: Callable[[str], None], undo: list[Callable[[], None]]) -> None:
    """Copy the template under a work name, write identity and first admin in one
    transaction, then publish the file under its final name."""
    template = ensure_sqlite_template(settings)
    step("template")
    step("role")
    final = sqlite_path(settings, tenant.database_name)
    work = final.with_name(f".{final.name}.{secrets.token_hex(4)}.provisioning")

    def remove_work() -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)

    undo.append(remove_work)
    shutil.copyfile(template, work)
    step("database")
    step("privileges")
    conn = sqlite3.connect(work)
    try:
        harden_sqlite(conn, wal=False)
        # Nobody else opens a work file and a failure discards it: no journal on disk and no
        # fsync per commit, one fsync below before it is published.
        conn.execute("PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("INSERT INTO tenant_identity (id, slug, tenant_uid) VALUES (1, ?, ?)",
                     (tenant.slug, tenant.uid))
        step("identity")
        insert_row(conn.cursor(), _users_table(), admin, _SQLITE_DIALECT)
        conn.commit()
    finally:
        conn.close()
    with open(work, "rb+") as handle:
        os.fsync(handle.fileno())
    try:
        os.link(work, final)
    except FileExistsError:
        raise ProvisioningError(
            f"a database file for {tenant.slug!r} already exists; "
            "run `qalitel tenants sweep`") from None
    undo.append(lambda: final.unlink(missing_ok=True))
    work.unlink()


def _create_postgres(settings: Settings, tenant: Tenant, server: DatabaseServer,
                     admin_conn: Future, admin: dict[str, Any], step: Callable[[str], None],
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
        stack.callback(_close_when_done, admin_conn)
        conn = admin_conn.result()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT CONNECTION LIMIT %s")
                            .format(sql.Identifier(role)),
                            (settings.engine_cache_size * settings.tenant_pool_size * 4,))
        except psycopg2.errors.DuplicateObject:
            raise ProvisioningError(exists) from None
        undo.append(lambda: _drop_pg(url, None, role))
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
        undo.append(lambda: _drop_pg(url, database, None))
        with conn.cursor() as cur:  # before anybody can connect on PUBLIC's privilege
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(database)))
        # The server stretches the password (SCRAM) while the next session starts.
        login = _background(_enable_login, conn, role, password)
        try:
            tconn = stack.enter_context(pg.admin_connection(url, database))
        finally:
            login.result()
        conn.close()
        step("database")
        # This session built the clone's catalog cache file: the tenant's own session now
        # starts cheaply, in parallel with the hand-over.
        own = _background(psycopg2.connect, pg.libpq_dsn(
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
            _write_first_admin(own.result(), tenant, admin)
        finally:
            _close_when_done(own)


def _enable_login(conn: Any, role: str, password: str) -> None:
    """Give the role ``LOGIN`` and its password (stretched by the server: a few ms of CPU)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(
            sql.Identifier(role)), (password,))


def _background(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """Run ``function`` on a thread of its own (network waits release the GIL)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # handed to whoever reads the result
            future.set_exception(exc)

    threading.Thread(target=run, name="provision", daemon=True).start()
    return future


def _admin_connect(url: str) -> Any:
    conn = psycopg2.connect(pg.libpq_dsn(url), connect_timeout=10,
                            application_name="qalitel-admin")
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    return conn


def _close_when_done(future: Future | None) -> None:
    """Close the connection a background connect returns, now or whenever it arrives."""

    def close(done: Future) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    if future is not None:
        future.add_done_callback(close)


def _write_first_admin(conn: Any, tenant: Tenant, admin: dict[str, Any]) -> None:
    """Through the tenant's own login: check the identity row, then insert the first admin."""
    check_identity(conn, tenant.uid, tenant.slug)
    with conn.cursor() as cur:
        insert_row(cur, _users_table(), admin, _PG_DIALECT)
    conn.commit()


def _users_table() -> Table:
    from qalitel.users.models import User

    return User.__table__  # type: ignore[return-value]


def _first_admin_row(email: str, name: str, password_hash: str) -> dict[str, Any]:
    from qalitel.users.models import Profile

    return {"email": email, "name": name, "password_hash": password_hash,
            "profile": Profile.ADMIN}


def insert_row(cursor: Any, table: Table, values: dict[str, Any], dialect: Dialect) -> None:
    """Insert one row through a plain DBAPI cursor as the ORM would: Python-side column
    defaults filled in, values passed through the column types' bind processors."""
    row = dict(values)
    for column in table.columns:
        default = column.default
        if column.key in row or default is None:
            continue
        if default.is_scalar:
            row[column.key] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            row[column.key] = default.arg(None)  # type: ignore[attr-defined]
    compiled = insert(table).values(row).compile(dialect=dialect)
    params = compiled.construct_params()
    for key, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None and key in params:
            params[key] = processor(params[key])
    cursor.execute(str(compiled), params)


def _drop_pg(url: str, database: str | None, role: str | None) -> None:
    with pg.admin_connection(url) as conn:
        if database:
            pg.drop_database(conn, database)
        if role:
            pg.drop_role(conn, role)


# ---------------------------------------------------------------- destroy and sweep


def destroy_tenant(settings: Settings, tenant: Tenant) -> None:
    """Drop a tenant's database (and role) and its registry row. Irreversible."""
    from flask import current_app

    from maintenance.models import AccessLogEntry, AccessLogHead

    # Closed first: requests stop resolving, and the access-log triggers (p0004) allow the
    # purge of a closed tenant's log, and of nobody else's.
    tenant.status = TenantStatus.CLOSED
    db.session.commit()
    cache = current_app.extensions.get("qalitel_engines")
    if cache is not None:
        cache.invalidate(tenant.uid)
    if tenant.backend is Backend.POSTGRESQL and tenant.server is not None:
        _drop_pg(server_url(settings, tenant.server), tenant.database_name, tenant.role_name)
    else:
        path = sqlite_path(settings, tenant.database_name)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    for model in (AccessLogEntry, AccessLogHead):
        db.session.execute(model.__table__.delete().where(model.tenant_id == tenant.id))
    db.session.delete(tenant)
    db.session.commit()


def sweep(settings: Settings, *, older_than_s: float = 600.0) -> list[str]:
    """Remove what crashed provisionings left: stale ``provisioning`` rows and their databases,
    and databases, roles or files of this platform's naming that no registry row claims."""
    from datetime import UTC, datetime, timedelta

    removed: list[str] = []
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    for tenant in db.session.execute(
            select(Tenant).where(Tenant.status == TenantStatus.PROVISIONING)).scalars().all():
        created = tenant.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        if created <= cutoff:
            removed.append(f"registry:{tenant.slug}")
            destroy_tenant(settings, tenant)
    claimed = {t.database_name for t in db.session.execute(select(Tenant)).scalars()}
    claimed.add(settings.template_database)  # its name may well start with the prefix
    folder = settings.sqlite_tenant_dir
    if folder.exists():
        for path in folder.iterdir():
            base = re.sub(r"-(wal|shm|journal)$", "", path.name)
            if base.endswith(".provisioning") and time.time() - path.stat().st_mtime > \
                    older_than_s or base.endswith(".sqlite3") and not base.startswith(".") \
                    and base not in claimed:
                path.unlink(missing_ok=True)
                removed.append(f"file:{path.name}")
    prefix = settings.pg_name_prefix
    for server in db.session.execute(select(DatabaseServer)).scalars():
        url = server_url(settings, server)
        try:
            with pg.admin_connection(url) as conn, conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                            (prefix,))
                databases = [r[0] for r in cur.fetchall()]
                cur.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                            (prefix,))
                roles = [r[0] for r in cur.fetchall()]
        except psycopg2.OperationalError as exc:
            raise ProvisioningError(f"cannot reach database server {server.name!r} "
                                    f"(swept so far: {', '.join(removed) or 'nothing'}): "
                                    f"{str(exc).strip()}") from exc
        for name in databases:
            if name not in claimed:
                _drop_pg(url, name, None)
                removed.append(f"database:{name}")
        for name in roles:
            if name not in claimed and not name.startswith(prefix + GRANT_ROLE_INFIX):
                _drop_pg(url, None, name)
                removed.append(f"role:{name}")
    return removed
