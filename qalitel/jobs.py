"""The scheduled jobs of the host, registered with :mod:`core.jobs` when ``qalitel`` is
imported (:func:`register`); ``qalitel jobs run-due`` runs the due ones (cron, any host).

Each job reuses the code of its command (``backup run|prune|verify --deep``, ``maintenance
expire``, ``files sweep``) and returns a small summary for the ledger; a partial failure
raises :class:`~core.jobs.JobFailed` naming what failed. To add one (restore leftovers,
…), write its function here and add a line to
:func:`register`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from core.config import Settings
from core.jobs import JobContext, JobFailed, register_job

BACKUP_MAX_AGE = timedelta(hours=23)
"""A live tenant whose newest complete or partial backup is older than this is backed up
(daily, with slack for the run's own duration). A partial one counts: with a medium down,
archiving every tenant anew at each call would fill the others; that run first copies the
missing archives (``backups.run.complete_missing``), and ``backup status`` flags a tenant
without a complete backup for 26 hours."""
DEEP_SAMPLE = 3
"""Tenants deep-verified per run: those whose newest backup was least recently verified."""
LEDGER_DAYS = 90
"""How long the ledger of job runs (``job_runs``) is kept."""


def _targets(settings: Settings) -> list[Any]:
    from backups.errors import BackupConfigError
    from backups.targets import parse_targets

    try:
        return parse_targets(settings)
    except BackupConfigError as exc:
        raise JobFailed(str(exc)) from None


def daily_backups(ctx: JobContext) -> dict[str, Any]:
    """``backup run`` for every live tenant without a complete or partial backup in 23
    hours; fails (so retried with the back-off) while any tenant's newest backup is
    partial, without archiving it anew."""
    from backups.archive import recipient
    from backups.errors import BackupConfigError
    from backups.run import run_backups
    from backups.status import health
    from core.db import db
    from tenants.engines import TenantInfo
    from tenants.service import live_tenants

    targets = _targets(ctx.settings)
    try:
        recipient(ctx.settings)
    except BackupConfigError as exc:
        raise JobFailed(str(exc)) from None
    limit = BACKUP_MAX_AGE.total_seconds() / 3600
    report = health()
    stale = {h.tenant for h in report
             if h.backed_up_hours is None or h.backed_up_hours >= limit}
    incomplete = [f"{h.tenant}: its newest backup ({h.backed_up_hours} h old) is partial; "
                  "its next daily run copies it to the targets it misses"
                  for h in report if h.tenant not in stale and h.last_status == "partial"]
    infos = [TenantInfo.from_row(t) for t in live_tenants() if t.slug in stale]
    db.session.commit()
    db.session.remove()  # the workers have their own sessions
    outcomes = list(run_backups(current_app._get_current_object(), infos, targets))
    summary = {"backed_up": sorted(o.slug for o in outcomes if o.ok),
               "skipped": sorted(o.slug for o in outcomes if o.skipped)}
    failures = [line for o in outcomes for line in o.failures()]
    failures += [f"{o.slug}: backup {o.backup_id} is {o.status}" for o in outcomes
                 if not o.failures() and not o.ok and not o.skipped]
    failures += incomplete  # not archived anew, but still a failure to see (a medium down)
    if failures:
        raise JobFailed("; ".join(failures), {**summary, "failed": len(failures)})
    return summary


def prune_backups(ctx: JobContext) -> dict[str, Any]:
    """``backup prune``: copies past the retention window, from every target."""
    from backups.prune import prune

    results = prune(ctx.settings, _targets(ctx.settings))
    summary = {"pruned": [r.backup_id for r in results if not r.failures]}
    failures = [f"{r.tenant}: backup {r.backup_id}: {f}" for r in results for f in r.failures]
    if failures:
        raise JobFailed("; ".join(failures), summary)
    return summary


def deep_verify_sample(ctx: JobContext) -> dict[str, Any]:
    """``backup verify --deep`` of the live tenants whose newest backup was least recently
    deep-verified (never verified first)."""
    from backups.archive import identities
    from backups.errors import BackupConfigError
    from backups.verify import deep_verify, newest
    from tenants.service import live_tenants

    targets = _targets(ctx.settings)
    try:
        identities(ctx.settings)
    except BackupConfigError as exc:
        raise JobFailed(str(exc)) from None
    candidates = []
    for tenant in live_tenants():
        backup = newest(tenant.uid)
        if backup is not None:
            verified = backup.deep_verified_at
            candidates.append((verified is not None, str(verified or ""), tenant.slug, tenant))
    candidates.sort(key=lambda c: c[:3])
    checks = [deep_verify(c[3], ctx.settings, targets) for c in candidates[:DEEP_SAMPLE]]
    summary = {"verified": [c.tenant for c in checks if c.ok]}
    failures = [f"{c.tenant}: {p}" for c in checks for p in c.problems]
    if failures:
        raise JobFailed("; ".join(failures), summary)
    return summary


def maintenance_expiry(ctx: JobContext) -> dict[str, Any]:
    """``maintenance expire``: stored revocations, overdue requests, grants past their end."""
    from maintenance.grants import expire_grants
    from maintenance.requests import expire_overdue
    from maintenance.revocations import apply_pending

    applied = apply_pending()
    requests = [r.public_id for r in expire_overdue()]
    grants = [g.id for g in expire_grants()]
    return {"revocations": applied, "requests_expired": requests, "grants_expired": grants}


def files_sweep(ctx: JobContext) -> dict[str, Any]:
    """``files sweep --all``: unreferenced attached files past their grace period."""
    from qalitel.cli_files import sweep_tenants
    from tenants.service import live_tenants

    removed = sweep_tenants(live_tenants())
    return {"removed": sum(removed.values()), "tenants": len(removed)}


def ledger_prune(ctx: JobContext) -> dict[str, Any]:
    """Forget job runs older than :data:`LEDGER_DAYS` (the ledger would grow for ever)."""
    from core.jobs.runner import prune_ledger

    return {"deleted": prune_ledger(timedelta(days=LEDGER_DAYS))}


def exports(ctx: JobContext) -> dict[str, Any]:
    """Build the pending data exports (a client's full export, a user's own data) and delete
    the files of those past their validity."""
    from qalitel.exports.jobs import expire_exports, process_pending_exports

    return {"built": process_pending_exports(ctx.app), "expired": expire_exports(ctx.app)}


def exports_waiting() -> bool:
    """Someone asked for an export: build it at the next call, not at the period's end."""
    from sqlalchemy import exists, select

    from core.db import db
    from qalitel.exports.models import DataExport, ExportState

    return bool(db.session.execute(select(exists().where(
        DataExport.state == ExportState.PENDING))).scalar())


def retention(ctx: JobContext) -> dict[str, Any]:
    """Retention periods from configuration: sign-ins older than
    ``QALITEL_LOGIN_HISTORY_DAYS`` in every live tenant, and the files of data exports past
    their ``QALITEL_EXPORT_DAYS`` (also done by ``exports``, each minute)."""
    from qalitel.exports.jobs import expire_exports
    from qalitel.my_data.retention import prune_login_history
    from tenants.service import live_tenants

    removed, failures = prune_login_history(ctx.settings, live_tenants())
    summary = {"login_events_deleted": sum(removed.values()), "tenants": len(removed),
               "exports_expired": expire_exports(ctx.app)}
    if failures:
        raise JobFailed("; ".join(failures), summary)
    return summary


def backup_sweep(ctx: JobContext) -> dict[str, Any]:
    """What restores and deep verifications killed midway left: rolled back or finished."""
    from backups.sweep import sweep_leftovers

    swept = sweep_leftovers(ctx.settings)
    if not swept.ok:
        raise JobFailed("; ".join(swept.errors), swept.as_dict())
    return swept.as_dict()


def closures(ctx: JobContext) -> dict[str, Any]:
    """Closed tenants: drop after the grace period, delete backup copies past their window,
    purge, and write each step into the tenant's deletion record."""
    from qalitel.closure.job import run_closures

    summary = run_closures(ctx.app)
    if not summary.ok:
        raise JobFailed("; ".join(summary.errors), summary.as_dict())
    return summary.as_dict()


def notifications(ctx: JobContext) -> dict[str, Any]:
    """Due-soon, overdue and weekly digest mails of every active tenant, and the retries of
    those that failed (:mod:`qalitel.notifications.schedule`)."""
    from qalitel.notifications.schedule import run_notifications
    from tenants.service import live_tenants

    summary, failures = run_notifications(live_tenants())
    if failures:
        raise JobFailed("; ".join(failures), summary)
    return summary


def _can_decrypt(settings: Settings) -> bool:
    """Deep verification needs the identity file, which only some hosts hold."""
    return settings.backup_identity is not None


def register() -> None:
    """Every job and its period, in the order ``run-due`` runs them."""
    register_job("maintenance-expiry", timedelta(minutes=5), maintenance_expiry,
                 description="Expire overdue maintenance requests and ended grants")
    register_job("backups", timedelta(hours=1), daily_backups, lease_ttl=timedelta(minutes=30),
                 description="Back up every live tenant without a backup in 23 hours")
    register_job("backup-prune", timedelta(days=1), prune_backups,
                 description="Delete backup copies past the retention window")
    register_job("backup-deep-verify", timedelta(days=1), deep_verify_sample,
                 lease_ttl=timedelta(minutes=30), enabled=_can_decrypt,
                 description="Restore a sample of backups into scratch copies and compare")
    register_job("backup-sweep", timedelta(hours=1), backup_sweep,
                 description="Settle what killed restores and deep verifications left")
    register_job("closures", timedelta(minutes=1), closures, lease_ttl=timedelta(minutes=30),
                 description="Drop, purge and record the deletion of closed tenants")
    register_job("exports", timedelta(hours=1), exports, lease_ttl=timedelta(minutes=30),
                 waiting=exports_waiting,
                 description="Build requested data exports (at once when one is asked for); "
                             "delete expired ones")
    register_job("files-sweep", timedelta(hours=6), files_sweep,
                 description="Remove unreferenced attached files")
    register_job("jobs-ledger-prune", timedelta(days=1), ledger_prune,
                 description=f"Forget job runs older than {LEDGER_DAYS} days")
    register_job("retention", timedelta(hours=6), retention,
                 description="Delete sign-ins and export files past their retention period")
    register_job("notifications", timedelta(minutes=15), notifications,
                 description="Mail due-soon, overdue and weekly digest notifications; "
                             "retry failed ones")
