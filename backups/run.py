"""``backup run``: archive each tenant once, write the archive to every target, catalogue it.

A run first completes the copies earlier runs left missing (a target was down, or the
process died between targets), from a good copy whose checksum still matches; then it makes
a new archive. A target that fails gets no file (folder targets clean their temporary
file) and a failed copy row; the others still get theirs.

Each tenant is backed up under the lease ``backup:<tenant uid>`` (:mod:`core.jobs.lease`), so
two hosts never back up one tenant at once: the second reports it skipped, not failed. No
platform transaction stays open while a dump or a copy is made (a pooled connection idle in
transaction for a whole dump would starve the pool), and a run whose lease was taken over
stops before the catalogue says more: that tenant fails with "lease lost".
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from backups import archive
from backups.errors import BackupError, TargetError
from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
from backups.targets import Target
from core import clock
from core.config import Settings
from core.db import db
from core.jobs import lease
from core.jobs.lease import Lease
from tenants.engines import TenantInfo

ERROR_MAX = 2000
SKIPPED = "skipped"
LEASE_TTL = timedelta(minutes=10)
LEASE_LOST = ("lease lost: another holder took over this tenant's backup lease, so this "
              "run stopped without cataloguing its archive as complete")


class LeaseLost(BackupError):
    """The tenant's backup lease was taken over while this run worked on it."""


def check_lease(held: Lease | None) -> None:
    """:class:`LeaseLost` unless ``held`` is still ours (renewed on the way)."""
    if held is not None and (held.lost or not held.renew()):
        raise LeaseLost(LEASE_LOST)


@dataclass
class TenantOutcome:
    slug: str
    backup_id: int | None = None
    status: str = BackupStatus.FAILED.value
    size: int | None = None
    sha256: str | None = None
    copies: dict[str, str] = field(default_factory=dict)  # target -> "ok" or the error
    completed: list[str] = field(default_factory=list)  # "backup 12 → target" resumed
    error: str | None = None
    resume_error: str | None = None
    skipped: str | None = None  # why this run left the tenant alone ("running elsewhere")

    @property
    def ok(self) -> bool:
        return self.status == BackupStatus.COMPLETE.value and self.error is None

    def failures(self) -> list[str]:
        found = [f"{self.slug}: {self.error}"] if self.error else []
        if self.resume_error:
            found.append(f"{self.slug}: completing earlier copies: {self.resume_error}")
        found += [f"{self.slug}: {target}: {why}" for target, why in self.copies.items()
                  if why != "ok"]
        return found

    def as_dict(self) -> dict:
        return {"tenant": self.slug, "backup_id": self.backup_id, "status": self.status,
                "size": self.size, "sha256": self.sha256, "copies": self.copies,
                "completed_copies": self.completed, "error": self.error,
                "resume_error": self.resume_error, "skipped": self.skipped}


def _short(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:ERROR_MAX]


def workers_for(settings: Settings, count: int) -> int:
    """Tenants worked on at once: half the connection budget. Each holds one connection to
    its database (``pg_dump``'s; :func:`backups.dump.server_major` adds a short one once per
    server), so the other half is headroom; on 2 cores, twice the workers gained nothing."""
    return max(1, min(count, settings.migrate_connection_budget // 2))


def _record_copy(backup: Backup, target: Target, error: str | None) -> None:
    row = next((c for c in backup.copies if c.target == target.name), None)
    if row is None:
        row = BackupCopy(target=target.name, status=CopyStatus.FAILED)
        backup.copies.append(row)
    row.status = CopyStatus.FAILED if error else CopyStatus.OK
    row.error = error
    row.written_at = None if error else clock.now()


def _settle(backup: Backup, targets: list[Target]) -> None:
    good = {c.target for c in backup.copies if c.status is CopyStatus.OK}
    if all(t.name in good for t in targets):
        backup.status = BackupStatus.COMPLETE
    elif good:
        backup.status = BackupStatus.PARTIAL
    else:
        backup.status = BackupStatus.FAILED


def write_copies(backup: Backup, source: Path, targets: list[Target],
                 outcome: TenantOutcome | None = None, held: Lease | None = None) -> None:
    """Put ``source`` on every target still lacking a good copy. Each copy is committed
    before the next target is written (a run killed between targets is resumed from the
    catalogue; no transaction is open while a copy is written); the last one in the same
    commit as the backup's final status. :class:`LeaseLost` when ``held`` was taken over,
    before the next copy or the backup's final status."""
    key = backup.key or ""
    good = {c.target for c in backup.copies if c.status is CopyStatus.OK}
    pending = [t for t in targets if t.name not in good]
    db.session.commit()
    for n, target in enumerate(pending, start=1):
        check_lease(held)
        try:
            target.put(key, source)
            error = None
        except TargetError as exc:
            error = str(exc)[:ERROR_MAX]
        _record_copy(backup, target, error)
        if n < len(pending):
            db.session.commit()
        if outcome is not None:
            outcome.copies[target.name] = error or "ok"
    check_lease(held)
    _settle(backup, targets)
    backup.finished_at = clock.now()
    db.session.commit()


def fetch_good_copy(backup: Backup, targets: list[Target], into: Path) -> bool:
    """Copy a good, checksum-matching copy of ``backup`` into ``into``."""
    by_name = {t.name: t for t in targets}
    key, expected = backup.key or "", (backup.sha256, backup.size)
    good = [c.target for c in backup.copies if c.status is CopyStatus.OK]
    db.session.commit()  # no transaction open while the copy is read
    for name in good:
        target = by_name.get(name)
        if target is None:
            continue
        try:
            with target.open(key) as reader, open(into, "wb") as writer:
                while chunk := reader.read(archive.CHUNK):
                    writer.write(chunk)
        except (TargetError, OSError):
            continue
        if archive.file_sha256(into) == expected:
            return True
    return False


def resumable(uid: str, settings: Settings) -> list[Backup]:
    since = clock.now() - timedelta(days=settings.backup_retention_days)
    return list(db.session.execute(
        select(Backup).where(Backup.tenant_uid == uid, Backup.started_at >= since,
                             Backup.sha256.is_not(None),
                             Backup.status.in_([BackupStatus.RUNNING, BackupStatus.PARTIAL]))
        .order_by(Backup.id)).scalars())


def complete_missing(info: TenantInfo, settings: Settings, targets: list[Target],
                     staging: Path, outcome: TenantOutcome, held: Lease | None = None) -> None:
    for backup in resumable(info.uid, settings):
        before = {c.target for c in backup.copies if c.status is CopyStatus.OK}
        source = staging / f"resume-{backup.id}.age"
        if not fetch_good_copy(backup, targets, source):
            continue
        write_copies(backup, source, targets, held=held)
        source.unlink(missing_ok=True)
        outcome.completed += [f"backup {backup.id} → {c.target}" for c in backup.copies
                              if c.status is CopyStatus.OK and c.target not in before]


DIED = "the backup process died before its archive was made (nothing reached any target)"


def fail_dead_runs(settings: Settings, uid: str, own: Path | None = None) -> list[int]:
    """Mark failed the tenant's backups still ``running`` without an archive whose process
    died: no live run of this tenant holds a staging folder (each run holds one from
    before its catalogue row exists, so a live run's row is never taken for dead)."""
    rows = list(db.session.execute(select(Backup).where(
        Backup.tenant_uid == uid, Backup.status == BackupStatus.RUNNING,
        Backup.sha256.is_(None))).scalars())
    if not rows or archive.others_alive(settings, f"{uid}-", own):
        return []
    for row in rows:
        row.status, row.error, row.finished_at = BackupStatus.FAILED, DIED, clock.now()
    db.session.commit()
    return [row.id for row in rows]


def archive_key(info: TenantInfo, backup: Backup) -> str:
    stamp = backup.started_at.strftime("%Y%m%dT%H%M%SZ")
    return f"{info.uid}/{stamp}-{backup.id}.qbk.age"


def _fail(backup: Backup, exc: BaseException, outcome: TenantOutcome) -> TenantOutcome:
    backup.status, backup.error = BackupStatus.FAILED, _short(exc)
    backup.finished_at = clock.now()
    db.session.commit()
    outcome.error = str(exc)[:ERROR_MAX]
    return outcome


def backup_tenant(info: TenantInfo, settings: Settings, targets: list[Target],
                  held: Lease | None = None) -> TenantOutcome:
    """One tenant, inside an app context: resume earlier copies, then archive anew, while
    ``held`` (the tenant's lease) stays ours."""
    outcome = TenantOutcome(info.slug)
    with archive.staging_folder(settings, f"{info.uid}-{secrets.token_hex(4)}") as staging:
        try:
            complete_missing(info, settings, targets, staging, outcome, held)
        except LeaseLost as exc:
            db.session.rollback()
            outcome.error = str(exc)
            return outcome
        except Exception as exc:  # resuming is best effort; the new archive still goes on
            db.session.rollback()
            outcome.resume_error = _short(exc)
        fail_dead_runs(settings, info.uid, staging)
        started = clock.now()
        backup = Backup(tenant_uid=info.uid, tenant_slug=info.slug, backend=info.backend.value,
                        status=BackupStatus.RUNNING, started_at=started)
        db.session.add(backup)
        db.session.flush()
        backup_id = outcome.backup_id = backup.id
        db.session.commit()
        db.session.close()  # no platform transaction nor connection held during the dump
        try:
            built = archive.build(info, settings, staging, started)
            check_lease(held)
        except (BackupError, OSError) as exc:
            return _fail(db.session.get_one(Backup, backup_id), exc, outcome)
        backup = db.session.get_one(Backup, backup_id)
        backup.key = archive_key(info, backup)
        backup.sha256, backup.size = built.sha256, built.size
        backup.schema_revision = built.manifest["schema_revision"]
        db.session.commit()
        outcome.sha256, outcome.size = built.sha256, built.size
        try:
            write_copies(backup, built.path, targets, outcome, held)
        except LeaseLost as exc:
            db.session.rollback()
            return _fail(db.session.get_one(Backup, backup_id), exc, outcome)
        outcome.status = backup.status.value
    return outcome


def run_backups(app: Flask, infos: list[TenantInfo], targets: list[Target],
                progress: Callable[[TenantOutcome], None] | None = None) -> Iterator[TenantOutcome]:
    """Back up ``infos`` in parallel (bounded by the connection budget), yielding outcomes
    as they finish. Each worker thread has its own app context and platform session."""
    settings: Settings = app.extensions["qalitel_settings"]
    archive.sweep_staging(settings)

    def one(info: TenantInfo) -> TenantOutcome:
        with app.app_context():
            # This thread's session alone writes its tenant's rows (under the lease): what it
            # committed need not be read back after each commit.
            db.session().expire_on_commit = False
            try:
                with lease.held(f"backup:{info.uid}", LEASE_TTL) as held:
                    if held is None:
                        return TenantOutcome(info.slug, status=SKIPPED,
                                             skipped="running elsewhere")
                    try:
                        return backup_tenant(info, settings, targets, held)
                    finally:  # its connection back to the pool before the lease is let go
                        db.session.close()
            except Exception as exc:
                db.session.rollback()
                return TenantOutcome(info.slug, error=_short(exc))
            finally:
                db.session.remove()

    workers = workers_for(settings, len(infos))
    if workers == 1:
        for info in infos:
            outcome = one(info)
            if progress:
                progress(outcome)
            yield outcome
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backup") as pool:
        futures = [pool.submit(one, info) for info in infos]
        for future in as_completed(futures):
            outcome = future.result()
            if progress:
                progress(outcome)
            yield outcome
