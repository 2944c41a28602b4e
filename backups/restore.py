"""``backup restore SLUG BACKUP_ID``: put a tenant back as one of its backups holds it.

The archive is fetched from a good copy, decrypted and checked (tenant, backend, schema
revision known to this code). Then the tenant is suspended (its users get the "suspended"
page, and on PostgreSQL what was still connected is cut off) for the whole rest of the
restore: the database is restored and checked (dump hash, row counts) into a new database
or file *beside* the live one as the tenant's role, migrated to head if it is older, the
files and the database are swapped (:mod:`backups.swap`: the tenant always has a database);
the previous ones are kept until the restored database opens as the tenant (identity row
checked), then dropped, and only then the tenant gets its status back. A failure at any
step leaves the tenant as it was.

Each step is journalled (:mod:`backups.journal`) and named for fault injection (``fault=``,
used by tests): ``journal``, ``suspended``, ``staged``, ``files-staged``, ``files-placed``,
``swapped``, ``checked``, ``cleaned``. A process killed at any of them leaves what
:func:`backups.sweep.sweep_leftovers` settles: rolled back before the database swap,
forward after it, the tenant's status from before the restore given back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import text

from backups import archive, journal, replay, swap
from backups.dump import pg_counts, sqlite_counts
from backups.errors import ArchiveError, BackupError
from backups.journal import Plan
from backups.models import Backup
from backups.run import fetch_good_copy
from backups.targets import Target
from backups.verify import _compare, pg_restore_as_role
from core.config import Settings
from core.db import db
from tenants import migrations, pg
from tenants.engines import TenantInfo, build_engine
from tenants.migrate import migrate_one
from tenants.registry import Backend, Tenant, TenantStatus
from tenants.servers import server_url

log = logging.getLogger(__name__)
ident = sql.Identifier
#: What a database refusing a step of the restore raises (rolled back: nothing changed).
DatabaseError = (psycopg2.Error, sqlite3.Error)
STEPS = ("journal", "suspended", "staged", "files-staged", "files-placed", "swapped",
         "checked", "cleaned")


@dataclass
class Restored:
    slug: str
    backup_id: int
    from_revision: str | None
    to_revision: str | None
    tables: int
    files: int


def _known_revision(revision: str | None) -> None:
    if not revision:
        raise ArchiveError("the archive names no schema revision")
    if not migrations.knows("tenant", revision):
        raise ArchiveError(f"the archive's schema revision {revision[:64]!r} is newer than "
                           "this code (or unknown to it): upgrade the code first")


def _check_manifest(manifest: dict[str, Any], backup: Backup, tenant: Tenant,
                    content: Path) -> Path:
    if manifest["tenant"]["uid"] != tenant.uid or backup.tenant_uid != tenant.uid:
        raise ArchiveError("the archive belongs to another tenant")
    if manifest["backend"] != tenant.backend.value:
        raise ArchiveError(f"the archive is of a {manifest['backend']} tenant, this tenant "
                           f"is on {tenant.backend.value}")
    _known_revision(manifest["schema_revision"])
    member = content / manifest["database"]["member"]
    if archive.file_sha256(member) != (manifest["database"]["sha256"],
                                       manifest["database"]["size"]):
        raise ArchiveError("the database dump differs from its manifest hash")
    return member


def _rewrite_identity_sqlite(path: Path, info: TenantInfo) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE tenant_identity SET slug = ?, tenant_uid = ? WHERE id = 1",
                     (info.slug, info.uid))
        conn.commit()
    finally:
        conn.close()


def _rewrite_identity_pg(admin: str, database: str, info: TenantInfo) -> None:
    conn = psycopg2.connect(pg.libpq_dsn(admin, database), connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE tenant_identity SET slug = %s, tenant_uid = %s WHERE id = 1",
                        (info.slug, info.uid))
        conn.commit()
    finally:
        conn.close()


def _migrated(info: TenantInfo, settings: Settings, source_uid: str) -> str | None:
    """Migrate the staged database to head, then replay what happened since the backup
    (erasures: :mod:`backups.replay`), before it goes live."""
    outcome = migrate_one(info, settings)
    if outcome.error:
        raise BackupError(f"migrating the restored database failed: {outcome.summary}")
    replay.replay(info, settings, tuple(dict.fromkeys((source_uid, info.uid))))
    return outcome.to_revision


def opens(info: TenantInfo, settings: Settings) -> None:
    """Connect as the tenant (its identity row checked on connect)."""
    engine = build_engine(info, settings, pooled=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _restore_sqlite(tenant: Tenant, info: TenantInfo, settings: Settings, member: Path,
                    manifest: dict[str, Any], plan: Plan,
                    admin: str | None) -> tuple[str | None, int]:
    staged = Path(plan.db_staged)
    shutil.copyfile(member, staged)
    try:
        conn = sqlite3.connect(f"file:{staged}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise ArchiveError("the restored SQLite file fails its integrity check")
            counts = sqlite_counts(conn)
        finally:
            conn.close()
        problems = _compare(manifest, counts, member.parent)
        if problems:
            raise ArchiveError("; ".join(problems))
        if manifest["tenant"]["uid"] != info.uid:
            _rewrite_identity_sqlite(staged, info)
        swap.match_page_size(str(staged), plan.db_live)
        revision = _migrated(dataclasses.replace(info, database_name=staged.name), settings,
                             manifest["tenant"]["uid"])
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return revision, len(counts)


def _restore_postgresql(tenant: Tenant, info: TenantInfo, settings: Settings, member: Path,
                        manifest: dict[str, Any], plan: Plan,
                        admin: str | None) -> tuple[str | None, int]:
    assert admin is not None and tenant.role_name
    role, staged = tenant.role_name, plan.db_staged
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER {}").format(
            ident(staged), ident(role)))
    try:
        pg_restore_as_role(settings, admin, staged, role, member, "pg_restore")
        conn = psycopg2.connect(pg.libpq_dsn(admin, staged), connect_timeout=10)
        try:
            with conn.cursor() as cursor:
                counts = pg_counts(cursor)
        finally:
            conn.close()
        problems = _compare(manifest, counts, member.parent)
        if problems:
            raise ArchiveError("; ".join(problems))
        if manifest["tenant"]["uid"] != info.uid:
            _rewrite_identity_pg(admin, staged, info)
        revision = _migrated(dataclasses.replace(info, database_name=staged), settings,
                            manifest["tenant"]["uid"])
    except BaseException:
        with pg.admin_connection(admin) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                ident(staged)))
        raise
    return revision, len(counts)


@contextlib.contextmanager
def _server(settings: Settings, tenant: Tenant, token: str) -> Iterator[str | None]:
    """The admin URL of a PostgreSQL tenant's server, with the run's lock held there."""
    if tenant.backend is Backend.SQLITE:
        yield None
        return
    if tenant.server is None or not tenant.role_name:
        raise BackupError(f"tenant {tenant.slug} has no database server or role")
    admin = server_url(settings, tenant.server)
    with journal.held_on_server(admin, token):
        yield admin


def _no_fault(_step: str) -> None:
    pass


def _suspend(tenant: Tenant, engines: Any) -> None:
    tenant.status = TenantStatus.SUSPENDED
    db.session.commit()
    engines.invalidate(tenant.uid)


def _resume(tenant: Tenant, status: TenantStatus, engines: Any) -> None:
    """Give the tenant back its status from before the restore (unless it was changed
    meanwhile) and commit; this process's engine for it is dropped."""
    if tenant.status is TenantStatus.SUSPENDED:
        tenant.status = status
    db.session.commit()
    engines.invalidate(tenant.uid)


def restore(source: Tenant, backup: Backup, settings: Settings, targets: list[Target],
            engines: Any, into: Tenant | None = None, *, created: bool = False,
            fault: Callable[[str], None] | None = None) -> Restored:
    """Restore ``backup`` of ``source`` over ``into`` (default: over ``source`` itself;
    another tenant's identity row is rewritten to name it). See the module docstring;
    ``created`` says ``into`` was made for this restore (a killed one is destroyed)."""
    tenant = into or source
    info = TenantInfo.from_row(tenant)
    token = secrets.token_hex(6)
    hit = fault or _no_fault
    plan = swap.plan_for(settings, tenant, token, created)
    with journal.alive(settings, token), \
            archive.staging_folder(settings, f"restore-{token}") as staging:
        journal.save(settings, plan)  # first: a killed --as restore destroys its new tenant
        try:
            encrypted = staging / "archive.age"
            if not fetch_good_copy(backup, targets, encrypted):
                raise ArchiveError("no good copy of this backup on any configured target")
            manifest = archive.decrypt_to(encrypted, settings, staging)
            content = staging / "content"
            member = _check_manifest(manifest, backup, source, content)
            if tenant.backend is not source.backend:
                raise BackupError("a backup is restored onto a tenant of the same backend")
            hit("journal")
        except BaseException:
            journal.settled(settings, token)
            raise
        with _server(settings, tenant, token) as admin:
            step = _restore_sqlite if tenant.backend is Backend.SQLITE else _restore_postgresql
            status, suspended = tenant.status, False
            try:
                if status is TenantStatus.ACTIVE:
                    _suspend(tenant, engines)
                    suspended = True
                    swap.cut_off(plan, admin)
                hit("suspended")
                plan.revision, tables = step(tenant, info, settings, member, manifest, plan,
                                             admin)
                journal.save(settings, plan)
                hit("staged")
                swap.stage_files(plan, content)
                hit("files-staged")
                swap.place_files(plan)
                hit("files-placed")
                swap.swap_database(plan, admin)
                hit("swapped")
                opens(info, settings)
            except BaseException:
                db.session.rollback()
                swap.roll_back(plan, admin)
                if suspended:
                    _resume(tenant, status, engines)
                journal.settled(settings, token)
                raise
            plan.committed = True
            journal.save(settings, plan)
            try:
                hit("checked")
            finally:  # even a failure here leaves the restore standing (the sweep ends it)
                tenant.schema_revision = plan.revision
                _resume(tenant, status, engines)
            try:
                swap.roll_forward(plan, admin)
            except Exception:  # the restore stands; the sweep drops what it replaced
                log.exception("restore %s of %s: the replaced database or files stay for "
                              "`backup sweep`", token, tenant.slug)
            else:
                journal.settled(settings, token)
        hit("cleaned")
    return Restored(tenant.slug, backup.id, manifest["schema_revision"], plan.revision, tables,
                    len(manifest["files"]))


def restore_as(source: Tenant, backup: Backup, new_slug: str, settings: Settings,
               targets: list[Target], engines: Any,
               fault: Callable[[str], None] | None = None) -> Restored:
    """Restore ``backup`` of ``source`` as a new tenant ``new_slug``: provisioned with its
    own database and role (and no first rows), then restored over; destroyed again if the
    restore fails, so nothing is left half-made."""
    from tenants.provisioning import create_tenant, destroy_tenant

    # No first rows: the restored users arrive with the data; the address is never stored.
    made = create_tenant(settings, new_slug, source.name, f"restore@{new_slug}.example",
                         backend=source.backend.value,
                         server_name=source.server.name if source.server else None,
                         first_rows=lambda _admin: [])
    try:
        return restore(source, backup, settings, targets, engines, into=made.tenant,
                       created=True, fault=fault)
    except BaseException:
        db.session.rollback()
        destroy_tenant(settings, made.tenant)
        raise
