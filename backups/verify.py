"""``backup verify``: every copy's checksum on every target, and with ``--deep`` the newest
archive of each tenant restored into a scratch database (or file) and compared with its
manifest: row count of every table, and every file's hash. On PostgreSQL the dump is
restored as the tenant's own role, as an in-place restore does (:func:`pg_restore_as_role`):
what it holds never runs with a superuser's rights. The scratch copy is dropped.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import make_url, select

from backups import archive, journal
from backups.dump import libpq_env, pg_counts, pg_tool, run_tool, sqlite_counts
from backups.errors import ArchiveError, BackupError, TargetError
from backups.models import Backup, BackupStatus
from backups.run import fetch_good_copy
from backups.targets import Target
from core import clock
from core.config import Settings
from core.db import db
from tenants import pg
from tenants.registry import Backend, Tenant
from tenants.servers import server_url


@dataclass
class CopyCheck:
    backup_id: int
    tenant: str
    target: str
    result: str  # "ok", "missing", "short (n of m bytes)", "altered", or the target's error

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def check_copy(backup: Backup, target: Target) -> str:
    try:
        size = target.size(backup.key or "")
        if size is None:
            return "missing"
        if size != backup.size:
            return f"{'short' if size < (backup.size or 0) else 'long'} ({size} of " \
                   f"{backup.size} bytes)"
        with target.open(backup.key or "") as reader:
            digest, _ = archive.sha256_of(reader)
    except TargetError as exc:
        return str(exc)
    return "ok" if digest == backup.sha256 else "altered (SHA-256 differs)"


def checkable(uids: list[str] | None) -> list[Backup]:
    query = select(Backup).where(
        Backup.sha256.is_not(None),
        Backup.status.not_in([BackupStatus.FAILED, BackupStatus.PRUNING,
                                BackupStatus.PRUNED])).order_by(Backup.id)
    if uids is not None:
        query = query.where(Backup.tenant_uid.in_(uids))
    return list(db.session.execute(query).scalars())


def verify_checksums(backups: list[Backup], targets: list[Target]) -> list[CopyCheck]:
    """Check each backup on each configured target, recording the result on its copy row."""
    checks: list[CopyCheck] = []
    for backup in backups:
        rows = {c.target: c for c in backup.copies}
        for target in targets:
            result = check_copy(backup, target)
            row = rows.get(target.name)
            if row is not None:
                row.checked_at, row.check_result = clock.now(), result[:200]
            checks.append(CopyCheck(backup.id, backup.tenant_slug, target.name, result))
        db.session.commit()
    return checks


@dataclass
class DeepCheck:
    tenant: str
    backup_id: int | None
    problems: list[str] = field(default_factory=list)
    tables: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and self.backup_id is not None


def _compare(manifest: dict[str, Any], counts: dict[str, int], content: Path) -> list[str]:
    problems = []
    expected: dict[str, int] = manifest["database"]["tables"]
    for table in sorted(set(expected) | set(counts)):
        if expected.get(table) != counts.get(table):
            problems.append(f"table {table}: {counts.get(table)} rows restored, "
                            f"{expected.get(table)} in the manifest")
    for entry in manifest["files"]:
        path = content / archive.FILES_PREFIX / entry["path"]
        if not path.is_file():
            problems.append(f"file {entry['path']}: missing")
        elif archive.file_sha256(path) != (entry["sha256"], entry["size"]):
            problems.append(f"file {entry['path']}: hash differs")
    return problems


def _restore_sqlite(dump: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise ArchiveError(f"SQLite integrity check: {verdict}")
        return sqlite_counts(conn)
    finally:
        conn.close()


def pg_restore_as_role(settings: Settings, admin: str, database: str, role: str,
                       dump: Path, what: str) -> None:
    """Restore ``dump`` into ``database`` (new, empty and owned by the tenant's ``role``)
    as that role: closed to PUBLIC and its public schema the role's, as in a provisioned
    tenant (the role is NOINHERIT: owning the database does not let it create in a schema
    ``pg_database_owner`` owns)."""
    with pg.admin_connection(admin) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(database)))
    with pg.admin_connection(admin, database) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role)))
    run_tool([pg_tool(settings, "pg_restore"), "--no-owner", "--no-privileges",
              f"--role={role}", "--exit-on-error", "--no-password", f"--dbname={database}",
              str(dump)], libpq_env(make_url(admin).set(database=database)), what)


def _restore_postgresql(dump: Path, tenant: Tenant, settings: Settings) -> dict[str, int]:
    if tenant.server is None or not tenant.role_name:
        raise BackupError(f"tenant {tenant.slug} has no database server or role to restore "
                          "on")
    admin = server_url(settings, tenant.server)
    token = secrets.token_hex(6)
    scratch = journal.scratch_database(settings, "verify", token)
    with journal.held_on_server(admin, token) as held:
        with held.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER {}").format(
                sql.Identifier(scratch), sql.Identifier(tenant.role_name)))
        try:
            pg_restore_as_role(settings, admin, scratch, tenant.role_name, dump,
                               "pg_restore into the scratch database")
            conn = psycopg2.connect(pg.libpq_dsn(admin, scratch), connect_timeout=10)
            try:
                with conn.cursor() as cursor:
                    return pg_counts(cursor)
            finally:
                conn.close()
        finally:
            with held.cursor() as cursor:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(scratch)))


def newest(uid: str) -> Backup | None:
    return db.session.execute(
        select(Backup).where(Backup.tenant_uid == uid, Backup.sha256.is_not(None),
                             Backup.status.in_([BackupStatus.COMPLETE, BackupStatus.PARTIAL]))
        .order_by(Backup.started_at.desc(), Backup.id.desc()).limit(1)).scalar_one_or_none()


def deep_verify(tenant: Tenant, settings: Settings, targets: list[Target]) -> DeepCheck:
    backup = newest(tenant.uid)
    check = DeepCheck(tenant.slug, backup.id if backup else None)
    if backup is None:
        check.problems.append("no backup to verify")
        return check
    with archive.staging_folder(settings, f"verify-{secrets.token_hex(6)}") as staging:
        encrypted = staging / "archive.age"
        try:
            if not fetch_good_copy(backup, targets, encrypted):
                raise ArchiveError("no good copy on any configured target")
            manifest = archive.decrypt_to(encrypted, settings, staging)
            if manifest["tenant"]["uid"] != tenant.uid:
                raise ArchiveError("the archive belongs to another tenant")
            content = staging / "content"
            member = content / manifest["database"]["member"]
            if archive.file_sha256(member) != (manifest["database"]["sha256"],
                                               manifest["database"]["size"]):
                raise ArchiveError("the database dump differs from its manifest hash")
            if manifest["backend"] == Backend.SQLITE.value:
                counts = _restore_sqlite(member)
            else:
                counts = _restore_postgresql(member, tenant, settings)
            check.problems += _compare(manifest, counts, content)
            check.tables, check.files = len(counts), len(manifest["files"])
        except (ArchiveError, BackupError, OSError, KeyError, psycopg2.Error) as exc:
            check.problems.append(str(exc) or type(exc).__name__)
    backup.deep_verified_at = clock.now()
    backup.deep_result = "ok" if check.ok else "; ".join(check.problems)[:2000]
    db.session.commit()
    return check
