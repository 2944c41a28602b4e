"""``backup prune``: delete every copy older than ``QALITEL_BACKUP_RETENTION_DAYS`` from
every target, each deletion recorded in the catalogue.

A live (active or suspended) tenant's newest complete backup, its newest deep-verified one
and its newest one with at least one good copy (written, and not found altered by a checksum
check: a ``partial`` backup while a medium is down) are never pruned, whatever their age: a
tenant whose backups stopped still has one to restore. A closed or destroyed tenant keeps
nothing past the window; a closed tenant's copies are deleted by its closure's purge
(``qalitel.closure``), which names each of them in the tenant's deletion record, not by the
plain prune. A target taken out of the configuration for good is retired
(:mod:`backups.retire`) so prune stops waiting for its copies.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, or_, select

from backups.errors import TargetError
from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
from backups.targets import Target
from core import clock
from core.config import Settings
from core.db import db
from tenants.registry import LIVE_STATUSES, Tenant, TenantStatus

ERROR_MAX = 2000


@dataclass
class Pruned:
    backup_id: int
    tenant: str
    deleted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _good_copy():
    """A copy of the backup that is written and that no checksum check found altered."""
    return select(BackupCopy.id).where(
        BackupCopy.backup_id == Backup.id, BackupCopy.status == CopyStatus.OK,
        or_(BackupCopy.checked_at.is_(None), BackupCopy.check_result == "ok")).exists()


KEPT = (
    Backup.status == BackupStatus.COMPLETE,
    Backup.deep_result == "ok",
    and_(Backup.status.in_([BackupStatus.COMPLETE, BackupStatus.PARTIAL,
                            BackupStatus.RUNNING]),
         Backup.sha256.is_not(None), _good_copy()),
)
"""For each condition, a live tenant's newest backup meeting it is kept."""


def protected(session) -> set[int]:
    """Ids of the backups prune keeps whatever their age (see the module docstring)."""
    live = set(session.execute(select(Tenant.uid).where(
        Tenant.status.in_(LIVE_STATUSES))).scalars())
    keep: set[int] = set()
    for uid in live:
        for condition in KEPT:
            newest = session.execute(
                select(Backup.id).where(Backup.tenant_uid == uid, condition,
                                        Backup.pruned_at.is_(None))
                .order_by(Backup.started_at.desc(), Backup.id.desc()).limit(1)).scalar()
            if newest is not None:
                keep.add(newest)
    return keep


def due(settings: Settings, tenant_uids: Collection[str] | None = None) -> list[Backup]:
    cutoff = clock.now() - timedelta(days=settings.backup_retention_days)
    keep = protected(db.session)
    query = select(Backup).where(Backup.started_at < cutoff, Backup.pruned_at.is_(None))
    if tenant_uids is not None:
        query = query.where(Backup.tenant_uid.in_(list(tenant_uids)))
    else:
        closed = select(Tenant.uid).where(Tenant.status == TenantStatus.CLOSED)
        query = query.where(Backup.tenant_uid.not_in(closed))
    rows = db.session.execute(query.order_by(Backup.id)).scalars()
    return [b for b in rows if b.id not in keep]


def prune(settings: Settings, targets: list[Target],
          tenant_uids: Collection[str] | None = None) -> list[Pruned]:
    """Delete the due backups' copies on every target (a copy absent there is fine); only
    those of ``tenant_uids`` when given (a closure's purge).

    Each copy row says what happened to it: ``pruned`` once deleted, else still ``ok`` (or
    ``failed``) with the deletion's error. A backup with a copy left is ``pruning`` (neither
    checked nor restored any more) until a later prune deletes the rest."""
    by_name = {t.name: t for t in targets}
    results = []
    for backup in due(settings, tenant_uids):
        result = Pruned(backup.id, backup.tenant_slug)
        rows = {c.target: c for c in backup.copies}
        for name in dict.fromkeys([*by_name, *rows]):
            row, target = rows.get(name), by_name.get(name)
            if row is not None and row.status is CopyStatus.PRUNED:
                continue
            if target is None:
                if row is not None and row.status is not CopyStatus.FAILED:
                    row.error = "not deleted: target no longer configured"
                    result.failures.append(
                        f"{name}: target no longer configured (gone for good? `qalitel "
                        f"backup retire-target {name}`)")
                continue
            try:
                if backup.key:
                    target.delete(backup.key)
            except TargetError as exc:
                why = str(exc)[:ERROR_MAX]
                result.failures.append(why)
                if row is not None:
                    row.error = f"not deleted: {why}"
                continue
            if row is None:
                row = BackupCopy(target=name, status=CopyStatus.PRUNED)
                backup.copies.append(row)
            row.status, row.pruned_at, row.error = CopyStatus.PRUNED, clock.now(), None
            result.deleted.append(name)
        if result.failures:
            backup.status = BackupStatus.PRUNING
            backup.error = ("prune: " + "; ".join(result.failures))[:ERROR_MAX]
        else:
            backup.status, backup.pruned_at = BackupStatus.PRUNED, clock.now()
        db.session.commit()
        results.append(result)
    return results


def forget_tenant(targets: list[Target], tenant_uid: str) -> list[str]:
    """Once every backup of a departed tenant is pruned: remove its own folder from each
    folder target (with any temporary file a crashed run left there); the targets named."""
    from backups.targets import FolderTarget

    removed = []
    for target in targets:
        if not isinstance(target, FolderTarget) or "/" in tenant_uid or not tenant_uid:
            continue
        folder = target.root / tenant_uid
        if folder.is_dir():
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                raise TargetError(f"{target.name}: {exc.strerror or exc}") from exc
            removed.append(target.name)
    return removed
