"""Backup health per live tenant, for monitoring (``qalitel backup status --json``) and the
staff console: the age of its newest complete backup, its last outcome, the runs that failed
since that good one, and whether it is overdue.

Two ages, on purpose. *Overdue* counts from the newest **complete** backup: a tenant whose
copies have been incomplete (a medium down) for :data:`OVERDUE` is flagged, even though it
has fresh archives. The ``backups`` job schedules from the newest backup with at least one
good copy (complete **or partial**, :attr:`Health.backed_up_at`): a medium that is down does
not make it archive every tenant anew at each call; the next daily run first copies the
missing archive there (``backups.run.complete_missing``), before the tenant is overdue."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from backups.models import Backup, BackupStatus
from core import clock
from core.db import db
from tenants.registry import LIVE_STATUSES, Tenant

OVERDUE = timedelta(hours=26)
"""A daily backup that has not succeeded for this long is overdue (a day and a margin)."""
UNSUCCESSFUL = (BackupStatus.FAILED, BackupStatus.PARTIAL)
BACKED_UP = (BackupStatus.COMPLETE, BackupStatus.PARTIAL)
"""A good copy on at least one target: enough not to archive the tenant anew yet."""


@dataclass
class Health:
    tenant: str
    last_good_at: datetime | None
    age_hours: float | None
    last_status: str | None
    last_error: str | None
    overdue: bool
    failures: int = 0
    """Failed or partial runs since the newest complete backup (all of them without one)."""
    backed_up_at: datetime | None = None
    """When the newest complete or partial backup started (what scheduling counts from)."""
    backed_up_hours: float | None = None


def _hours(since: datetime | None, now: datetime) -> float | None:
    return round((now - since).total_seconds() / 3600, 2) if since is not None else None


aware = clock.as_utc  # stored datetimes as UTC (SQLite drops the zone)


def health(slugs: Collection[str] | None = None) -> list[Health]:
    """The health of every live tenant, or of those of ``slugs`` that are live."""
    now = clock.now()
    query = select(Tenant).where(Tenant.status.in_(LIVE_STATUSES))
    if slugs is not None:
        query = query.where(Tenant.slug.in_(list(slugs)))
    found = []
    for tenant in db.session.execute(query.order_by(Tenant.slug)).scalars():
        newest = select(Backup).where(Backup.tenant_uid == tenant.uid).order_by(
            Backup.started_at.desc(), Backup.id.desc()).limit(1)
        last = db.session.execute(newest).scalar_one_or_none()
        good = db.session.execute(newest.where(Backup.status == BackupStatus.COMPLETE)
                                  ).scalar_one_or_none()
        some = db.session.execute(newest.where(Backup.status.in_(BACKED_UP))
                                  ).scalar_one_or_none()
        at = aware(good.started_at) if good else None
        some_at = aware(some.started_at) if some else None
        failed = select(func.count()).select_from(Backup).where(
            Backup.tenant_uid == tenant.uid, Backup.status.in_(UNSUCCESSFUL))
        if good is not None:
            failed = failed.where(Backup.started_at > good.started_at)
        found.append(Health(tenant.slug, at, _hours(at, now),
                            last.status.value if last else None, last.error if last else None,
                            at is None or now - at > OVERDUE,
                            db.session.execute(failed).scalar() or 0,
                            some_at, _hours(some_at, now)))
    return found


def recent(uid: str, limit: int) -> list[Backup]:
    """A tenant's ``limit`` newest backups, newest first (their copies loaded)."""
    from sqlalchemy.orm import selectinload

    return list(db.session.execute(
        select(Backup).where(Backup.tenant_uid == uid).options(selectinload(Backup.copies))
        .order_by(Backup.started_at.desc(), Backup.id.desc()).limit(limit)).scalars())
