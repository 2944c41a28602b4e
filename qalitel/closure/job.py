"""``run_closures``: the closure job ``jobs run-due`` runs (idempotent, safe to repeat).

For every closed tenant, in order: end any maintenance access still open; once the grace
period is over, drop the live database, role and files; then delete each backup copy whose
window has ended, on every target (a closed tenant's newest backup is not kept: the prune
rule protecting it is for live tenants); once no copy is left, remove the tenant's folder
from the folder targets, delete the closure's export file (and any other export of the
tenant made since the drop), clear the closure reason and mark it purged. Each removal
is an item of its deletion record.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from flask import Flask
from sqlalchemy import select

from backups.errors import BackupConfigError
from backups.models import Backup
from backups.prune import forget_tenant, prune
from backups.targets import Target, parse_targets
from core import clock
from core.db import db
from qalitel.closure.service import ACCESS_NOTE, drop_tenant, record_of
from qalitel.exports.closure import drop_tenant_exports, purge_closure_exports
from tenants.deletion import DeletionItem, ItemKind
from tenants.registry import Tenant, TenantStatus

log = logging.getLogger(__name__)

JOB = "jobs run-due: closures"


@dataclass
class ClosureSummary:
    dropped: list[str] = field(default_factory=list)
    copies_deleted: int = 0
    purged: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _remaining(uid: str) -> list[Backup]:
    return list(db.session.execute(select(Backup).where(
        Backup.tenant_uid == uid, Backup.pruned_at.is_(None))).scalars())


def _purge_backups(settings, tenant: Tenant, targets: list[Target] | None, by: str,
                   summary: ClosureSummary) -> bool:
    """Delete the tenant's copies past their window; True once none is left anywhere."""
    record = record_of(tenant)
    if _remaining(tenant.uid):
        if targets is None:
            summary.errors.append(f"{tenant.slug}: backup copies remain, but the targets "
                                  "configuration cannot serve")
            return False
        for pruned in prune(settings, targets, {tenant.uid}):
            backup = db.session.get(Backup, pruned.backup_id)
            for target in pruned.deleted:
                record.items.append(DeletionItem(
                    kind=ItemKind.BACKUP_COPY, name=backup.key or f"backup {backup.id}",
                    place=target, sha256=backup.sha256, size=backup.size,
                    removed_at=clock.now(), removed_by=by))
                summary.copies_deleted += 1
            summary.errors += [f"{tenant.slug}: backup {pruned.backup_id}: {f}"
                               for f in pruned.failures]
        db.session.commit()
        if _remaining(tenant.uid):
            return False
    if targets:
        for name in forget_tenant(targets, tenant.uid):
            record.items.append(DeletionItem(
                kind=ItemKind.TARGET_FOLDER, name=tenant.uid, place=name,
                removed_at=clock.now(), removed_by=by))
    copies = [i.removed_at for i in record.items if i.kind is ItemKind.BACKUP_COPY]
    record.backups_expired_at = max(copies) if copies else record.dropped_at
    return True


def _targets(settings, summary: ClosureSummary) -> list[Target] | None:
    if not settings.backup_targets:
        return []
    try:
        return parse_targets(settings)
    except BackupConfigError as exc:
        summary.errors.append(str(exc))
        return None


def run_closures(app: Flask, *, by: str = JOB) -> ClosureSummary:
    """Advance every closed tenant's deletion as far as its dates allow (module docstring)."""
    from maintenance import departure

    summary = ClosureSummary()
    with app.app_context():
        settings = app.extensions["qalitel_settings"]
        targets = _targets(settings, summary)
        closed = list(db.session.execute(select(Tenant).where(
            Tenant.status == TenantStatus.CLOSED, Tenant.purged_at.is_(None))
            .order_by(Tenant.id)).scalars())
        for tenant in closed:
            slug = tenant.slug
            try:
                now = clock.now()
                if tenant.dropped_at is None:
                    departure.end_access(settings, tenant, ACCESS_NOTE, by=by)
                    grace = tenant.grace_ends_at
                    if grace is not None and grace.tzinfo is None:
                        grace = grace.replace(tzinfo=now.tzinfo)
                    if grace is not None and grace > now:
                        db.session.commit()  # the grant roles it recorded
                        continue
                    drop_tenant(settings, tenant, by=by)
                    summary.dropped.append(slug)
                if _purge_backups(settings, tenant, targets, by, summary):
                    record = record_of(tenant)
                    drop_tenant_exports(settings, tenant, record, by)  # any made since
                    purge_closure_exports(tenant, record, by)
                    tenant.purged_at = record.purged_at = clock.now()
                    tenant.closure_reason = None  # the client's words: not kept
                    summary.purged.append(slug)
                elif tenant.purge_due_at is not None and now.date() > tenant.purge_due_at:
                    summary.overdue.append(slug)
                    summary.errors.append(f"{slug}: not purged by its purge date "
                                          f"{tenant.purge_due_at}")
                db.session.commit()
            except Exception as exc:  # one tenant failing must not stop the others
                db.session.rollback()
                log.exception("closure of %s not advanced", slug)
                summary.errors.append(f"{slug}: {exc}"[:500])
        db.session.remove()
    return summary
