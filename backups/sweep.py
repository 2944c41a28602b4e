"""``backup sweep``: settle and remove what restores and deep verifications that died
midway left behind (see :mod:`backups.journal` for the names and locks that tell them from
a live tenant's database, file or folder, and from a run still at work).

1. Each dead restore's journal is settled: before its database swap, the tenant's previous
   database and files are put back and what was staged is removed; after it, the restored
   database is kept if it opens as the tenant (else swapped back) and what it replaced is
   dropped. The tenant gets its status from before the restore; a tenant made for a
   ``--as`` restore that did not complete is destroyed.
2. Staging folders of dead runs (plaintext included) are removed; a backup whose process
   died before its archive was made is marked failed.
3. Scratch databases (staged restores, deep verifications) no live run holds, and scratch
   SQLite files and file folders with no journal left, are removed.
4. Temporary files (``.….partial``) of copies killed mid-write on folder targets are
   removed when no live run can be writing them: older than a backup lease's lifetime, or
   of a tenant whose backup lease is free (the sweep holds it while it removes them).

:func:`sweep_leftovers` is what ``jobs run-due`` calls.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from flask import current_app
from psycopg2 import sql
from sqlalchemy import select

from backups import archive, journal, swap
from backups.errors import BackupConfigError, TargetError
from backups.journal import Plan
from backups.models import Backup, BackupStatus
from backups.run import DIED, LEASE_TTL, fail_dead_runs
from backups.targets import FolderTarget, parse_targets
from core.config import Settings
from core.db import db
from core.jobs import lease
from tenants import pg
from tenants.engines import TenantInfo
from tenants.registry import DatabaseServer, Tenant, TenantStatus
from tenants.servers import server_url

_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SCRATCH_FILE = re.compile(r"\.(restoring|pre-restore)-([0-9a-f]{12})(-wal|-shm|-journal)?$")


@dataclass
class Swept:
    removed: list[str] = field(default_factory=list)  # what was deleted
    settled: list[str] = field(default_factory=list)  # what was put back or kept
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"removed": self.removed, "settled": self.settled, "errors": self.errors}


def _invalidate(uid: str) -> None:
    cache = current_app.extensions.get("qalitel_engines")
    if cache is not None:
        cache.invalidate(uid)


def _settle(settings: Settings, plan: Plan, out: Swept) -> None:
    from backups.restore import opens
    from tenants.lifecycle import destroy_tenant

    tenant = db.session.execute(
        select(Tenant).where(Tenant.uid == plan.tenant_uid)).scalar_one_or_none()
    label = f"restore {plan.token}"
    if tenant is None:
        out.settled.append(f"{label}: its tenant is gone, nothing to put back")
        return
    label = f"{tenant.slug}: restore {plan.token}"
    admin = None if tenant.server is None else server_url(settings, tenant.server)
    _invalidate(tenant.uid)
    kept = False
    if swap.committed(plan, admin):
        try:
            opens(TenantInfo.from_row(tenant), settings)
            kept = True
        except Exception as exc:  # the restored database does not open: swap back
            out.settled.append(f"{label}: the restored database does not open "
                               f"({str(exc)[:200]}): putting the previous one back")
    if kept:
        plan.committed = True  # first: a sweep killed while rolling forward keeps it too
        journal.save(settings, plan)
        done = swap.roll_forward(plan, admin)
        tenant.schema_revision = plan.revision
        out.settled.append(f"{label}: kept the restored database")
    else:
        plan.committed = False
        done = swap.roll_back(plan, admin)
        out.settled.append(f"{label}: the previous database and files are in place")
    out.removed += [f"{label}: {what}" for what in done]
    if plan.created and not kept:
        destroy_tenant(settings, tenant)
        out.removed.append(f"{label}: tenant {tenant.slug} (made for the restore)")
        return
    if tenant.status is TenantStatus.SUSPENDED and plan.status_before != tenant.status.value:
        tenant.status = TenantStatus(plan.status_before)
        out.settled.append(f"{label}: {tenant.slug} is {plan.status_before} again")
    db.session.commit()
    _invalidate(tenant.uid)


def _scratch_databases(settings: Settings, out: Swept) -> None:
    pattern = journal.scratch_pattern(settings)
    for server in db.session.execute(select(DatabaseServer)).scalars():
        url = server_url(settings, server)
        try:
            with pg.admin_connection(url) as conn, conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                            (settings.pg_name_prefix + journal.SCRATCH_INFIX,))
                for (name,) in cur.fetchall():
                    match = pattern.fullmatch(name)
                    # A set-aside database is only ever dropped by settling its journal.
                    if match is None or match.group(1) == "pre":
                        continue
                    if not journal.free_on_server(conn, match.group(2)):
                        continue
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)))
                    out.removed.append(f"database:{name}")
        except psycopg2.Error as exc:
            out.errors.append(f"database server {server.name}: {str(exc).strip()[:300]}")


def _scratch_files(settings: Settings, out: Swept) -> None:
    for folder in (settings.sqlite_tenant_dir, settings.instance_dir / "files"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _SCRATCH_FILE.search(path.name)
            if match is None:
                continue
            token = match.group(2)
            if journal.is_alive(settings, token) or journal.has_journal(settings, token):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                Path(path).unlink(missing_ok=True)
            out.removed.append(f"{'folder' if folder.name == 'files' else 'file'}:{path.name}")


def _modified_before(path: Path, before: float) -> bool:
    try:
        return path.lstat().st_mtime < before
    except FileNotFoundError:  # its writer renamed it meanwhile
        return False


def _partial_copies(settings: Settings, out: Swept) -> None:
    """Remove the ``.partial`` files on folder targets no live run writes: older than a
    backup lease's lifetime, or of a tenant whose backup lease nobody holds now."""
    if not settings.backup_targets:
        return
    try:
        targets = parse_targets(settings)
    except BackupConfigError as exc:
        out.errors.append(f"partial copies left on targets not swept: {exc}")
        return
    before = time.time() - LEASE_TTL.total_seconds()
    for target in targets:
        if not isinstance(target, FolderTarget):
            continue
        try:
            found = target.partials()
        except TargetError as exc:
            out.errors.append(str(exc))
            continue
        for folder in sorted({name for name, _path in found}):
            paths = [path for name, path in found if name == folder]
            stale = [path for path in paths if _modified_before(path, before)]
            held = None
            if len(stale) < len(paths) and _UID.fullmatch(folder):
                held = lease.acquire(f"backup:{folder}", LEASE_TTL)  # None: a run is at work
            try:
                for path in paths if held is not None else stale:
                    path.unlink(missing_ok=True)
                    out.removed.append(f"partial copy:{target.name}/{folder}/{path.name}")
            except OSError as exc:
                out.errors.append(f"{target.name}: {exc.strerror or exc}")
            finally:
                if held is not None:
                    held.release()


def sweep_leftovers(settings: Settings) -> Swept:
    """Settle and remove every leftover of dead restores and deep verifications (inside an
    app context). Safe to run at any time, from several hosts: a live run is left alone."""
    out = Swept()
    for token, plan in journal.dead_plans(settings):
        if plan is None:
            out.errors.append(f"restore {token}: its journal cannot be read (kept: "
                              f"{journal.journal_dir(settings) / token}.json)")
            continue
        try:
            _settle(settings, plan, out)
        except Exception as exc:  # one bad journal does not stop the others; kept for later
            db.session.rollback()
            out.errors.append(f"restore {token}: {str(exc)[:300]}")
            continue
        journal.forget(settings, token)
    out.removed += [f"journal:{name}" for name in journal.sweep_locks(settings)]
    out.removed += [f"staging:{name}" for name in archive.sweep_staging(settings)]
    dead = db.session.execute(select(Backup.tenant_uid, Backup.tenant_slug).where(
        Backup.status == BackupStatus.RUNNING, Backup.sha256.is_(None)).distinct()).all()
    for uid, slug in dead:
        out.settled += [f"{slug}: backup {n} failed: {DIED}"
                        for n in fail_dead_runs(settings, uid)]
    _scratch_databases(settings, out)
    _scratch_files(settings, out)
    db.session.commit()  # hold no platform transaction while leases are taken
    _partial_copies(settings, out)
    return out
