"""Closing and reopening a tenant, and dropping its live data once the grace period ends.

The purge date the client is given at closure is
``closure day + QALITEL_CLOSURE_GRACE_DAYS + QALITEL_BACKUP_RETENTION_DAYS + 30 days``
(:func:`purge_date`): no backup is taken after the closure, so the newest copy's window ends
at the latest ``retention`` days after it, and the drop happens ``grace`` days after it; the
30 days are the policy's margin for a target that is down or a job that did not run.

These services commit on their own, on purpose, like maintenance's decisions: each state
change is claimed with one conditional ``UPDATE`` and committed before what follows it
(access-log entries, which need the SQLite platform lock; irreversible drops), so that a
closure, a reopen and the drop never race into a half state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from core import clock, platform_transaction
from core.config import Settings
from core.db import db
from core.validation import InvalidInput, check_text, in_english
from maintenance import departure
from maintenance.models import AccessLogPurge
from qalitel.exports.closure import drop_tenant_exports
from tenants.deletion import DeletionItem, DeletionRecord, ItemKind
from tenants.lifecycle import drop_tenant_data
from tenants.registry import LIVE_STATUSES, Backend, Tenant, TenantStatus

log = logging.getLogger(__name__)

REASON_MAX = 500
POLICY_MARGIN_DAYS = 30
ACCESS_NOTE = "tenant closed"


class ClosureError(ValueError):
    """The tenant cannot be closed or reopened as asked (nothing was changed)."""


@dataclass
class Closure:
    slug: str
    closed_at: datetime
    grace_ends_at: datetime
    purge_due_at: date
    mailed: list[str] = field(default_factory=list)
    export_link: str | None = None
    ended_access: dict[str, list] = field(default_factory=dict)
    dropped: bool = False
    drop_error: str | None = None

    def as_dict(self) -> dict:
        return {"tenant": self.slug, "status": "closed", "closed_at": self.closed_at.isoformat(),
                "grace_ends_at": self.grace_ends_at.isoformat(),
                "purge_due_at": self.purge_due_at.isoformat(), "mailed": self.mailed,
                # the link itself is the admins' secret: not printed to the operator
                "export_offered": self.export_link is not None,
                "ended_access": self.ended_access,
                "dropped": self.dropped, "drop_error": self.drop_error}


def purge_date(settings: Settings, closed_at: datetime) -> date:
    """The day by which every copy of a tenant closed at ``closed_at`` is gone."""
    return closed_at.date() + timedelta(days=settings.closure_grace_days
                                        + settings.backup_retention_days + POLICY_MARGIN_DAYS)


def _reason(reason: object) -> str | None:
    try:
        cleaned = check_text(reason or "", REASON_MAX, multiline=False)
    except InvalidInput as exc:
        raise ClosureError(f"reason: {in_english(exc)}") from None
    return cleaned or None


def _invalidate(tenant: Tenant) -> None:
    cache = current_app.extensions.get("qalitel_engines")
    if cache is not None:
        cache.invalidate(tenant.uid)


def close_tenant(settings: Settings, tenant: Tenant, reason: object = None, *,
                 by: str = "qalitel tenants close") -> Closure:
    """Close ``tenant``: its pages answer 410 at once, its maintenance access ends, its admins
    are mailed the purge date (and the export link), and with no grace period its live data
    is dropped now. Raises ClosureError (nothing changed) for a tenant not active or
    suspended, or a bad reason."""
    from qalitel.closure.mail import closure_export_link, prepare_mail

    note = _reason(reason)
    if tenant.status not in LIVE_STATUSES:
        since = f" since {tenant.closed_at:%Y-%m-%d}" if tenant.closed_at else ""
        raise ClosureError(f"tenant {tenant.slug!r} is {tenant.status.value}{since}: only an "
                           "active or suspended tenant is closed")
    now = clock.now()
    previous = tenant.status
    claimed = db.session.execute(
        update(Tenant).where(Tenant.id == tenant.id, Tenant.status == previous)
        .values(status=TenantStatus.CLOSED, status_before_closure=previous, closed_at=now,
                closure_reason=note,
                grace_ends_at=now + timedelta(days=settings.closure_grace_days),
                dropped_at=None, purged_at=None, purge_due_at=purge_date(settings, now))
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        raise ClosureError(f"tenant {tenant.slug!r} changed meanwhile: try again")
    record = record_of(tenant)
    record.closed_at, record.purge_due_at = now, purge_date(settings, now)
    db.session.commit()
    db.session.refresh(tenant)
    _invalidate(tenant)
    result = Closure(tenant.slug, now, tenant.grace_ends_at or now,
                     tenant.purge_due_at or purge_date(settings, now))
    try:
        ended = departure.end_access(settings, tenant, ACCESS_NOTE, by=by)
        result.ended_access = {"expired_requests": ended.expired_requests,
                               "revoked_grants": ended.revoked_grants,
                               "expired_grants": ended.expired_grants}
    except Exception:  # the door refuses a closed tenant anyway; run_closures retries
        db.session.rollback()
        log.exception("maintenance access of %s not ended yet", tenant.slug)
    result.export_link = closure_export_link(tenant)
    try:
        result.mailed = prepare_mail(settings, tenant, result.export_link)
    except Exception:
        db.session.rollback()
        log.exception("closure mail of %s not prepared", tenant.slug)
    platform_transaction.commit()  # the prepared mail leaves now
    if settings.closure_grace_days == 0:
        try:
            drop_tenant(settings, tenant, by=by)
            result.dropped = True
        except Exception as exc:
            db.session.rollback()
            result.drop_error = str(exc)[:500]
            log.exception("drop of %s failed; run_closures retries", tenant.slug)
    return result



def reopen_tenant(settings: Settings, tenant: Tenant) -> Tenant:
    """Bring a closed tenant back during its grace period, in the status it was closed from
    (active: logins work; suspended stays suspended). Raises ClosureError for a tenant not
    closed, whose grace period is over (even when the job has not dropped it yet), or whose
    data was already dropped."""
    if tenant.status is not TenantStatus.CLOSED:
        raise ClosureError(f"tenant {tenant.slug!r} is {tenant.status.value}: only a closed "
                           "tenant is reopened")
    now = clock.now()
    if tenant.dropped_at is None and (tenant.grace_ends_at is None
                                      or clock.as_utc(tenant.grace_ends_at) <= now):
        ended = (f" on {clock.as_utc(tenant.grace_ends_at):%Y-%m-%d %H:%M} UTC"
                 if tenant.grace_ends_at else "")
        raise ClosureError(
            f"tenant {tenant.slug!r} cannot be reopened: its grace period ended{ended}; its "
            f"data is being dropped. Until {tenant.purge_due_at}, staff can restore a backup "
            f"of it as a new tenant: qalitel backup restore {tenant.slug} BACKUP_ID --as "
            "NEWSLUG")
    if tenant.dropped_at is not None:
        raise ClosureError(
            f"tenant {tenant.slug!r} cannot be reopened: its database and files were dropped "
            f"on {tenant.dropped_at:%Y-%m-%d} (grace period over). Until "
            f"{tenant.purge_due_at}, staff can restore a backup of it as a new tenant: "
            f"qalitel backup restore {tenant.slug} BACKUP_ID --as NEWSLUG")
    claimed = db.session.execute(
        update(Tenant).where(Tenant.id == tenant.id, Tenant.status == TenantStatus.CLOSED,
                             Tenant.dropped_at.is_(None), Tenant.grace_ends_at > now)
        .values(status=tenant.status_before_closure or TenantStatus.ACTIVE,
                status_before_closure=None, closed_at=None, closure_reason=None,
                grace_ends_at=None, purge_due_at=None)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        db.session.rollback()
        raise ClosureError(f"tenant {tenant.slug!r} is being dropped: it cannot be reopened")
    record = _record(tenant)
    if record is not None and not record.items:
        db.session.delete(record)  # nothing was deleted: no record to keep
    db.session.commit()
    db.session.refresh(tenant)
    _invalidate(tenant)
    from qalitel.exports.closure import withdraw_closure_exports

    withdraw_closure_exports(tenant)  # alive again: the closure's export goes
    return tenant


def _record(tenant: Tenant) -> DeletionRecord | None:
    return db.session.execute(select(DeletionRecord).where(
        DeletionRecord.tenant_uid == tenant.uid)).scalar_one_or_none()


def record_of(tenant: Tenant) -> DeletionRecord:
    """The tenant's deletion record, made when missing (a tenant closed before records)."""
    record = _record(tenant)
    if record is None:
        closed = tenant.closed_at or clock.now()
        record = DeletionRecord(tenant_uid=tenant.uid, tenant_slug=tenant.slug,
                                backend=tenant.backend.value, closed_at=closed,
                                purge_due_at=tenant.purge_due_at or closed.date())
        db.session.add(record)
    return record


def drop_tenant(settings: Settings, tenant: Tenant, *, by: str) -> DeletionRecord:
    """Drop a closed tenant's database, role and files (registry row kept), each recorded.

    Claimed first (``dropped_at`` set, committed) so that a concurrent reopen is refused;
    a failed drop clears the claim again, for the next run to retry."""
    departure.end_access(settings, tenant, ACCESS_NOTE, by=by)
    now = clock.now()
    claimed = db.session.execute(
        update(Tenant).where(Tenant.id == tenant.id, Tenant.status == TenantStatus.CLOSED,
                             Tenant.dropped_at.is_(None)).values(dropped_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(tenant)
    if claimed.rowcount != 1:
        raise ClosureError(f"tenant {tenant.slug!r} is not a closed tenant awaiting its drop")
    try:
        dropped = drop_tenant_data(settings, tenant)
    except BaseException:
        db.session.rollback()
        db.session.execute(update(Tenant).where(Tenant.id == tenant.id).values(dropped_at=None))
        db.session.commit()
        raise
    record = record_of(tenant)
    done = clock.now()

    def item(kind: ItemKind, name: str, **values) -> None:
        record.items.append(DeletionItem(kind=kind, name=name, removed_at=done,
                                         removed_by=by, **values))

    if tenant.backend is Backend.POSTGRESQL:
        item(ItemKind.DATABASE, dropped.database, place=dropped.server)
        if dropped.role:
            item(ItemKind.ROLE, dropped.role, place=dropped.server)
    else:
        item(ItemKind.DATABASE, dropped.database, place="SQLite file")
    item(ItemKind.FILES, dropped.files_folder, count=dropped.files)
    purge = db.session.execute(select(AccessLogPurge).where(
        AccessLogPurge.tenant_uid == tenant.uid)).scalar_one_or_none()
    if purge is not None:
        item(ItemKind.ACCESS_LOG, "maintenance access log", place="platform database",
             count=purge.entry_count, sha256=purge.last_hash)
    drop_tenant_exports(settings, tenant, record, by)
    record.dropped_at = done
    db.session.commit()
    return record
