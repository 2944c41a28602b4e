"""What the app hands the layers below: to the tenancy core (``tenants.hooks``) its two
migration lineages and a new tenant's first rows (``tenants.lifecycle`` removes a dropped
tenant's files itself); to maintenance the log purge at destroy time, how to list a tenant's
admins, the backup health the staff console shows and what follows a field an engineer
changed; to backups the erasure ledger and the search columns, replayed on restore; to
:mod:`core.jobs` the scheduled jobs; to the closure its export link
(:mod:`qalitel.exports.closure`); to the tenant session the search columns' upkeep
(:mod:`qalitel.records.search`).
:func:`register` runs when ``qalitel`` is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tenants import hooks

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LINEAGES = (
    hooks.Lineage("platform", str(MIGRATIONS / "platform"), "qalitel.platform_models"),
    hooks.Lineage("tenant", str(MIGRATIONS / "tenant"), "qalitel.tenant_models"),
)


def first_admin_rows(admin: hooks.FirstAdmin) -> list[hooks.Row]:
    """The first client admin's row, its password hashed here unless a hash was given."""
    from qalitel.users.models import Profile, User
    from qalitel.users.service import hash_password

    values: dict[str, Any] = {
        "email": admin.email, "name": admin.name, "profile": Profile.ADMIN,
        "password_hash": admin.password_hash or hash_password(admin.password)}
    return [(User.__table__, values)]


def active_admins(session: Any) -> list[tuple[str, str, str | None]]:
    """A tenant's active administrators (name, e-mail, language of their last sign-in): whom
    maintenance notifies, in their language."""
    from sqlalchemy import select

    from qalitel.users.models import Profile, User

    return [(name, email, locale) for name, email, locale in session.execute(
        select(User.name, User.email, User.locale).where(User.profile == Profile.ADMIN,
                                            User.suspended_at.is_(None)).order_by(User.id))]


def backup_health(slugs: Any, recent: int) -> dict[str, Any]:
    """The staff console's backup health (:mod:`maintenance.backup_health`), read from the
    catalogue by :func:`backups.status.health`, with each tenant's ``recent`` newest backups."""
    from backups import history, status
    from maintenance.backup_health import BackupHealth, RecentBackup
    from tenants.registry import Tenant

    uids: dict[str, str] = {}
    if recent:
        from sqlalchemy import select

        from core.db import db

        uids = {slug: uid for slug, uid in db.session.execute(
            select(Tenant.slug, Tenant.uid).where(Tenant.slug.in_(list(slugs))))}

    def listed(slug: str) -> list[RecentBackup]:
        found = []
        for backup in status.recent(uids[slug], recent) if slug in uids else []:
            checks = history.verification_summary(backup)
            found.append(RecentBackup(
                id=backup.id, started_at=status.aware(backup.started_at),
                status=backup.status.value, size=backup.size,
                copies_ok=sum(c.status.value == "ok" for c in backup.copies),
                copies=len(backup.copies), verified=checks,
                error=backup.error or "; ".join(c.error for c in backup.copies if c.error)
                or None))
        return found

    return {h.tenant: BackupHealth(h.last_good_at, h.age_hours, h.last_status, h.last_error,
                                   h.failures, h.overdue, listed(h.tenant))
            for h in status.health(slugs)}


# The hooks below import their feature when called: registering them loads nothing
# (``qalitel tenants list`` stays light: tests/test_cli_start.py).
def closure_export_link(tenant: Any) -> str | None:
    from qalitel.exports.closure import build_closure_export

    return build_closure_export(tenant)


def replay_erasures(*args: Any, **kwargs: Any) -> Any:
    from qalitel.my_data.replay import replay_erasures as replay

    return replay(*args, **kwargs)


def search_before_flush(*args: Any) -> None:
    from qalitel.records.search import before_flush

    before_flush(*args)


def reindex_search(*args: Any) -> Any:
    from qalitel.records.search import reindex_database

    return reindex_database(*args)


def search_after_maintenance(*args: Any) -> None:
    from qalitel.records.search import after_maintenance_change

    after_maintenance_change(*args)


def register() -> None:
    for lineage in LINEAGES:
        hooks.register_lineage(lineage)
    hooks.provide_first_rows(first_admin_rows)
    # Maintenance's part: the access log's recorded purge at destroy time (every app, the
    # page-less one of commands included) and whom to notify of a request.
    from maintenance import notify, purge

    purge.register()
    notify.on_list_admins(active_admins)
    from maintenance.changes import on_field_changed

    on_field_changed(search_after_maintenance)  # an engineer's edit is searchable as it is
    from maintenance.backup_health import provide_backup_health

    provide_backup_health(backup_health)
    from qalitel.closure.mail import on_closure_export_link

    on_closure_export_link(closure_export_link)  # the closure mail's export link
    from qalitel import jobs

    jobs.register()  # the scheduled jobs (``qalitel jobs run-due``)
    from backups import replay

    replay.on_restore(replay_erasures)  # a restored backup never brings an erased person back
    replay.on_restore(reindex_search)  # nor stale search text (also after `tenants import`)
    from sqlalchemy import event

    from tenants.context import TenantSession

    if not event.contains(TenantSession, "before_flush", search_before_flush):
        event.listen(TenantSession, "before_flush", search_before_flush)  # records.search
