"""``backup restore SLUG BACKUP_ID``: put a tenant back as one of its backups holds it.

The archive is fetched from a good copy, decrypted and checked (tenant, backend, schema
revision known to this code, dump hash, row counts) into a new database or file *beside*
the live one, then migrated to head if it is older. Only then, with the tenant suspended,
the two are swapped; the previous database and files are kept until the restored ones
open as the tenant (identity row checked), then dropped. A failure at any step before the
swap leaves the tenant as it was; a failure of the final check swaps back.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import make_url, text

from backups import archive, replay
from backups.dump import libpq_env, pg_counts, pg_tool, run_tool, sqlite_counts
from backups.errors import ArchiveError, BackupError
from backups.models import Backup
from backups.run import fetch_good_copy
from backups.targets import Target
from backups.verify import _compare
from core.config import Settings
from core.db import db
from tenants import migrations, pg
from tenants.engines import TenantInfo, build_engine, sqlite_path
from tenants.migrate import migrate_one
from tenants.registry import Backend, Tenant, TenantStatus
from tenants.servers import server_url


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
    try:
        known = migrations.script_directory("tenant").get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown id
        known = None
    if known is None:
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


def _opens(info: TenantInfo, settings: Settings) -> None:
    """Connect as the tenant (its identity row checked on connect)."""
    engine = build_engine(info, settings, pooled=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


class _Swap:
    """What moved the restored database and files into place: ``undo`` steps in the order
    they were taken (rolled back in reverse), ``cleanup`` once the restore checked out."""

    def __init__(self) -> None:
        self.undo: list[Any] = []
        self.cleanup: list[Any] = []

    def rollback(self) -> None:
        for step in reversed(self.undo):
            step()

    def commit(self) -> None:
        for step in self.cleanup:
            step()


def _swap_files(settings: Settings, tenant: Tenant, content: Path, token: str,
                swap: _Swap) -> None:
    live = archive.tenant_files_dir(settings, tenant.uid)
    live.parent.mkdir(parents=True, exist_ok=True)
    incoming = live.with_name(f"{live.name}.restoring-{token}")
    source = content / archive.FILES_PREFIX
    if source.is_dir():
        shutil.move(str(source), incoming)
    else:
        incoming.mkdir()
    previous = live.with_name(f"{live.name}.pre-restore-{token}")
    if live.exists():
        os.replace(live, previous)
        swap.undo.append(lambda: os.replace(previous, live))
        swap.cleanup.append(lambda: shutil.rmtree(previous, ignore_errors=True))
    os.replace(incoming, live)
    swap.undo.append(lambda: shutil.rmtree(live, ignore_errors=True))


def _restore_sqlite(tenant: Tenant, info: TenantInfo, settings: Settings, member: Path,
                    manifest: dict[str, Any], token: str, swap: _Swap) -> tuple[str | None, int]:
    live = sqlite_path(settings, tenant.database_name)
    staged_name = f"{tenant.database_name}.restoring-{token}"
    staged = sqlite_path(settings, staged_name)
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
        revision = _migrated(dataclasses.replace(info, database_name=staged_name), settings,
                            manifest["tenant"]["uid"])
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    previous = live.with_name(f"{live.name}.pre-restore-{token}")
    if live.exists():
        conn = sqlite3.connect(live)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{live}{suffix}").unlink(missing_ok=True)
        os.replace(live, previous)
        swap.undo.append(lambda: os.replace(previous, live))
        swap.cleanup.append(lambda: previous.unlink(missing_ok=True))
    os.replace(staged, live)
    swap.undo.append(lambda: live.unlink(missing_ok=True))
    return revision, len(counts)


def _restore_postgresql(tenant: Tenant, info: TenantInfo, settings: Settings, member: Path,
                        manifest: dict[str, Any], token: str,
                        swap: _Swap) -> tuple[str | None, int]:
    if tenant.server is None or not tenant.role_name:
        raise BackupError(f"tenant {tenant.slug} has no database server or role")
    admin = server_url(settings, tenant.server)
    live, role = tenant.database_name, tenant.role_name
    staged = f"{settings.pg_name_prefix}rst_{token}"
    previous = f"{settings.pg_name_prefix}pre_{token}"
    ident = sql.Identifier
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER {}").format(
            ident(staged), ident(role)))
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident(staged)))
    # As in a provisioned tenant, the role owns its schema (it is NOINHERIT: being the
    # database's owner does not let it create in a schema pg_database_owner owns).
    with pg.admin_connection(admin, staged) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(ident(role)))

    def drop(name: str) -> None:
        with pg.admin_connection(admin) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(name)))

    try:
        run_tool([pg_tool(settings, "pg_restore"), "--no-owner", "--no-privileges",
                  f"--role={role}", "--exit-on-error", "--no-password",
                  f"--dbname={staged}", str(member)],
                 libpq_env(make_url(admin).set(database=staged)), "pg_restore")
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
        drop(staged)
        raise

    def rename(old: str, new: str) -> None:
        with pg.admin_connection(admin) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(old)))
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (old,))
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(old), ident(new)))
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(new)))

    try:
        rename(live, previous)
    except BaseException:
        drop(staged)
        raise
    swap.undo.append(lambda: rename(previous, live))
    swap.cleanup.append(lambda: drop(previous))
    rename(staged, live)

    def unplace() -> None:
        rename(live, staged)
        drop(staged)

    swap.undo.append(unplace)
    return revision, len(counts)


def restore(source: Tenant, backup: Backup, settings: Settings, targets: list[Target],
            engines: Any, into: Tenant | None = None) -> Restored:
    """Restore ``backup`` of ``source`` over ``into`` (default: over ``source`` itself;
    another tenant's identity row is rewritten to name it). See the module docstring."""
    tenant = into or source
    info = TenantInfo.from_row(tenant)
    token = secrets.token_hex(6)
    with archive.staging_folder(settings, f"restore-{token}") as staging:
        encrypted = staging / "archive.age"
        if not fetch_good_copy(backup, targets, encrypted):
            raise ArchiveError("no good copy of this backup on any configured target")
        manifest = archive.decrypt_to(encrypted, settings, staging)
        content = staging / "content"
        member = _check_manifest(manifest, backup, source, content)
        if tenant.backend is not source.backend:
            raise BackupError("a backup is restored onto a tenant of the same backend")
        status = tenant.status
        tenant.status = TenantStatus.SUSPENDED
        db.session.commit()
        engines.invalidate(tenant.uid)
        swap = _Swap()
        try:
            step = _restore_sqlite if tenant.backend is Backend.SQLITE else _restore_postgresql
            revision, tables = step(tenant, info, settings, member, manifest, token, swap)
            _swap_files(settings, tenant, content, token, swap)
            _opens(info, settings)
        except BaseException:
            swap.rollback()
            raise
        finally:
            engines.invalidate(tenant.uid)
            tenant.status = status
            db.session.commit()
        swap.commit()
        tenant.schema_revision = revision
        db.session.commit()
    return Restored(tenant.slug, backup.id, manifest["schema_revision"], revision, tables,
                    len(manifest["files"]))


def restore_as(source: Tenant, backup: Backup, new_slug: str, settings: Settings,
               targets: list[Target], engines: Any) -> Restored:
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
        return restore(source, backup, settings, targets, engines, into=made.tenant)
    except BaseException:
        db.session.rollback()
        destroy_tenant(settings, made.tenant)
        raise
