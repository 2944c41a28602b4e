"""Backup health per live tenant, for monitoring (``qalitel backup status --json``): the
age of its newest complete backup, its last outcome, and whether it is overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from backups.models import Backup, BackupStatus
from core import clock
from core.db import db
from tenants.registry import Tenant, TenantStatus

OVERDUE = timedelta(hours=26)
"""A daily backup that has not succeeded for this long is overdue (a day and a margin)."""


@dataclass
class Health:
    tenant: str
    last_good_at: datetime | None
    age_hours: float | None
    last_status: str | None
    last_error: str | None
    overdue: bool


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def health() -> list[Health]:
    now = clock.now()
    tenants = db.session.execute(select(Tenant).where(
        Tenant.status.in_([TenantStatus.ACTIVE, TenantStatus.SUSPENDED]))
        .order_by(Tenant.slug)).scalars()
    found = []
    for tenant in tenants:
        newest = select(Backup).where(Backup.tenant_uid == tenant.uid).order_by(
            Backup.started_at.desc(), Backup.id.desc()).limit(1)
        last = db.session.execute(newest).scalar_one_or_none()
        good = db.session.execute(newest.where(Backup.status == BackupStatus.COMPLETE)
                                  ).scalar_one_or_none()
        at = _aware(good.started_at) if good else None
        age = (now - at) if at else None
        found.append(Health(tenant.slug, at,
                            round(age.total_seconds() / 3600, 2) if age is not None else None,
                            last.status.value if last else None, last.error if last else None,
                            age is None or age > OVERDUE))
    return found
