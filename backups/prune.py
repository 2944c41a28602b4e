"""``backup prune``: delete every copy older than ``QALITEL_BACKUP_RETENTION_DAYS`` from
every target, each deletion recorded in the catalogue.

A live (active or suspended) tenant's newest complete backup and its newest deep-verified
one are never pruned, whatever their age: a tenant whose backups stopped still has one to
restore. A closed or destroyed tenant keeps nothing past the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from backups.errors import TargetError
from backups.models import Backup, BackupCopy, BackupStatus, CopyStatus
from backups.targets import Target
from core import clock
from core.config import Settings
from core.db import db
from tenants.registry import Tenant, TenantStatus

ERROR_MAX = 2000


@dataclass
class Pruned:
    backup_id: int
    tenant: str
    deleted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def protected(session) -> set[int]:
    """Ids of the backups prune keeps whatever their age (see the module docstring)."""
    live = set(session.execute(select(Tenant.uid).where(
        Tenant.status.in_([TenantStatus.ACTIVE, TenantStatus.SUSPENDED]))).scalars())
    keep: set[int] = set()
    for uid in live:
        for condition in (Backup.status == BackupStatus.COMPLETE, Backup.deep_result == "ok"):
            newest = session.execute(
                select(Backup.id).where(Backup.tenant_uid == uid, condition,
                                        Backup.pruned_at.is_(None))
                .order_by(Backup.started_at.desc(), Backup.id.desc()).limit(1)).scalar()
            if newest is not None:
                keep.add(newest)
    return keep


def due(settings: Settings) -> list[Backup]:
    cutoff = clock.now() - timedelta(days=settings.backup_retention_days)
    keep = protected(db.session)
    rows = db.session.execute(select(Backup).where(Backup.started_at < cutoff,
                                                   Backup.pruned_at.is_(None))
                              .order_by(Backup.id)).scalars()
    return [b for b in rows if b.id not in keep]


def prune(settings: Settings, targets: list[Target]) -> list[Pruned]:
    """Delete the due backups' copies on every target (a copy absent there is fine).

    Each copy row says what happened to it: ``pruned`` once deleted, else still ``ok`` (or
    ``failed``) with the deletion's error. A backup with a copy left is ``pruning`` (neither
    checked nor restored any more) until a later prune deletes the rest."""
    by_name = {t.name: t for t in targets}
    results = []
    for backup in due(settings):
        result = Pruned(backup.id, backup.tenant_slug)
        rows = {c.target: c for c in backup.copies}
        for name in dict.fromkeys([*by_name, *rows]):
            row, target = rows.get(name), by_name.get(name)
            if row is not None and row.status is CopyStatus.PRUNED:
                continue
            if target is None:
                if row is not None and row.status is not CopyStatus.FAILED:
                    row.error = "not deleted: target no longer configured"
                    result.failures.append(f"{name}: target no longer configured")
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
