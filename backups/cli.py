"""``qalitel backup run|list|verify|restore|prune|status|sweep``.

Bad input (unknown slug, malformed targets, no recipient, an uninitialised platform
database, …) exits 2 before anything is written; a failure while working exits 1 naming
every one; ``--json`` prints one document for cron and scripts.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from flask import current_app
from flask.cli import with_appcontext

from backups.errors import BackupConfigError
from tenants.readiness import PlatformGroup

backup_group = PlatformGroup("backup", help="Encrypted backups of every tenant, on every target.")


def _refuse(message: str) -> NoReturn:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(2)


def _failed(failures: list[str]) -> NoReturn:
    click.secho(f"Error: {len(failures)} failure(s):", fg="red", err=True)
    for line in failures:
        click.secho(f"  {line}", fg="red", err=True)
    sys.exit(1)


def _settings():
    return current_app.extensions["qalitel_settings"]


def _targets():
    from backups.targets import parse_targets, same_device

    try:
        targets = parse_targets(_settings())
    except BackupConfigError as exc:
        _refuse(str(exc))
    for first, second in same_device(targets):
        click.secho(f"Warning: targets {first} and {second} are on one filesystem, not two "
                    "media", fg="yellow", err=True)
    return targets


def _tenants(slugs: tuple[str, ...], everyone: bool, *, closed_ok: bool = False) -> list[Any]:
    """The tenants named (all unknown ones reported at once), or every live one; a closed
    one too with ``closed_ok`` (restoring it ``--as`` a new tenant)."""
    from tenants.registry import LIVE_STATUSES, InvalidSlugError, TenantStatus
    from tenants.service import TenantNotFoundError, get_tenant, live_tenants

    if everyone and slugs:
        _refuse("give tenant slugs or --all, not both")
    if everyone:
        return live_tenants()
    found, problems = [], []
    for slug in dict.fromkeys(slugs):
        try:
            tenant = get_tenant(slug)
        except (InvalidSlugError, TenantNotFoundError) as exc:
            problems.append(str(exc))
            continue
        live = tenant.status in LIVE_STATUSES
        if not live and not (closed_ok and tenant.status is TenantStatus.CLOSED):
            problems.append(f"tenant {slug!r} is {tenant.status.value}"
                            + (" (restore it --as a new tenant)"
                               if tenant.status is TenantStatus.CLOSED else ""))
            continue
        found.append(tenant)
    if problems:
        _refuse("; ".join(problems))
    return found


def _emit(as_json: bool, document: Any, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=2, default=str))
    else:
        for line in lines:
            click.echo(line)


@backup_group.command("run")
@click.argument("slugs", nargs=-1)
@click.option("--all", "everyone", is_flag=True, help="Every active or suspended tenant.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_appcontext
def run_command(slugs: tuple[str, ...], everyone: bool, as_json: bool) -> None:
    """Archive SLUG… (or --all): database and files, encrypted, onto every target."""
    from backups.archive import recipient
    from backups.run import run_backups
    from tenants.engines import TenantInfo

    if not slugs and not everyone:
        _refuse("name tenant slugs, or --all")
    targets = _targets()
    try:
        recipient(_settings())
    except BackupConfigError as exc:
        _refuse(str(exc))
    infos = [TenantInfo.from_row(t) for t in _tenants(slugs, everyone)]
    from core.db import db

    db.session.remove()  # workers have their own sessions; hold no platform connection
    app = current_app._get_current_object()
    bar = everyone and not as_json and sys.stderr.isatty() and len(infos) > 0
    if bar:
        with click.progressbar(length=len(infos), label="Backing up", file=sys.stderr) as pb:
            outcomes = list(run_backups(app, infos, targets, lambda _o: pb.update(1)))
    else:
        outcomes = list(run_backups(app, infos, targets))
    outcomes.sort(key=lambda o: o.slug)
    lines = []
    for o in outcomes:
        if o.skipped:
            lines.append(f"{o.slug}: skipped ({o.skipped})")
            continue
        good = sum(v == "ok" for v in o.copies.values())
        state = o.status if o.error is None else f"failed: {o.error}"
        lines.append(f"{o.slug}: backup {o.backup_id} {state}, {o.size or 0} bytes, "
                     f"{good}/{len(targets)} targets")
        lines += [f"  completed copy of {c}" for c in o.completed]
    _emit(as_json, {"backups": [o.as_dict() for o in outcomes]}, lines)
    failures = [line for o in outcomes for line in o.failures()]
    failures += [f"{o.slug}: backup {o.backup_id} is {o.status}" for o in outcomes
                 if not o.failures() and not o.ok and not o.skipped]
    if failures:
        _failed(failures)


@backup_group.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
@with_appcontext
def list_command(slug: str, as_json: bool) -> None:
    """SLUG's backups, newest first: date, status, size, checksum and copies."""
    from sqlalchemy import select

    from backups.models import Backup
    from core.db import db
    from tenants.registry import InvalidSlugError
    from tenants.service import TenantNotFoundError, get_tenant

    try:
        tenant = get_tenant(slug)
    except (InvalidSlugError, TenantNotFoundError) as exc:
        _refuse(str(exc))
    rows = db.session.execute(select(Backup).where(Backup.tenant_uid == tenant.uid)
                              .order_by(Backup.started_at.desc(), Backup.id.desc())).scalars()
    document, lines = [], []
    for b in rows:
        copies = [{"target": c.target, "status": c.status.value, "error": c.error,
                   "written_at": c.written_at, "checked_at": c.checked_at,
                   "check_result": c.check_result} for c in b.copies]
        document.append({"id": b.id, "started_at": b.started_at, "finished_at": b.finished_at,
                         "status": b.status.value, "size": b.size, "sha256": b.sha256,
                         "schema_revision": b.schema_revision, "error": b.error,
                         "deep_verified_at": b.deep_verified_at, "deep_result": b.deep_result,
                         "copies": copies})
        good = sum(c["status"] == "ok" for c in copies)
        lines.append(f"{b.id}\t{b.started_at:%Y-%m-%d %H:%M:%S}Z\t{b.status.value}\t"
                     f"{b.size or 0} bytes\t{good} copies\t{(b.sha256 or '-')[:16]}")
    if not lines:
        lines = [f"{slug}: no backups"]
    _emit(as_json, {"tenant": slug, "backups": document}, lines)


@backup_group.command("verify")
@click.argument("slugs", nargs=-1)
@click.option("--deep", is_flag=True,
              help="Also restore each tenant's newest backup into a scratch copy and compare.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@with_appcontext
def verify_command(slugs: tuple[str, ...], deep: bool, as_json: bool) -> None:
    """Check every copy's checksum on every target (SLUG…'s, or every tenant's)."""
    from backups.archive import identities
    from backups.verify import checkable, deep_verify, verify_checksums
    from tenants.registry import LIVE_STATUSES
    from tenants.service import list_tenants

    targets = _targets()
    if deep:
        try:
            identities(_settings())
        except BackupConfigError as exc:
            _refuse(str(exc))
    tenants = _tenants(slugs, False) if slugs else list_tenants()
    uids = [t.uid for t in tenants] if slugs else None
    checks = verify_checksums(checkable(uids), targets)
    failures = [f"{c.tenant}: backup {c.backup_id} on {c.target}: {c.result}"
                for c in checks if not c.ok]
    lines = [f"{c.tenant}: backup {c.backup_id} on {c.target}: {c.result}" for c in checks]
    deeps = []
    if deep:
        for tenant in tenants:
            if tenant.status not in LIVE_STATUSES:
                continue
            result = deep_verify(tenant, _settings(), targets)
            deeps.append(result)
            if result.ok:
                lines.append(f"{tenant.slug}: backup {result.backup_id} restored and matches "
                             f"its manifest ({result.tables} tables, {result.files} files)")
            else:
                failures += [f"{tenant.slug}: deep: {p}" for p in result.problems]
    _emit(as_json, {"copies": [c.__dict__ for c in checks],
                    "deep": [{**d.__dict__, "ok": d.ok} for d in deeps]}, lines)
    if failures:
        _failed(failures)


@backup_group.command("restore")
@click.argument("slug")
@click.argument("backup_id")
@click.option("--as", "new_slug", default=None,
              help="Restore as a new tenant NEWSLUG (own database and role) instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_appcontext
def restore_command(slug: str, backup_id: str, new_slug: str | None, as_json: bool) -> None:
    """Put SLUG back as backup BACKUP_ID holds it (database and files), in place, or as a
    new tenant with --as NEWSLUG (the only way for a closed tenant, until its backups'
    window ends).

    The tenant is suspended during the swap; the previous database is kept until the
    restored one opens as the tenant. A corrupt, truncated or wrong-key archive, or one of
    a newer schema than this code, is refused and nothing changes.
    """
    from backups.archive import identities
    from backups.errors import ArchiveError, BackupError, TargetError
    from backups.models import Backup, BackupStatus
    from backups.restore import DatabaseError, restore, restore_as
    from core.db import db
    from core.validation import ID_MAX, id_or_none
    from tenants.registry import InvalidSlugError, ProvisioningError, Tenant, validate_slug

    targets = _targets()
    try:
        identities(_settings())
    except BackupConfigError as exc:
        _refuse(str(exc))
    [tenant] = _tenants((slug,), False, closed_ok=new_slug is not None)
    number = id_or_none(backup_id)
    if number is None:
        _refuse(f"backup id {backup_id[:40]!r} is not a number from 1 to {ID_MAX}")
    backup = db.session.get(Backup, number)
    if backup is None or backup.tenant_uid != tenant.uid:
        _refuse(f"tenant {slug!r} has no backup {backup_id}")
    if backup.sha256 is None or backup.status in (
            BackupStatus.FAILED, BackupStatus.PRUNING, BackupStatus.PRUNED):
        _refuse(f"backup {backup_id} of {slug!r} is {backup.status.value}: nothing to restore")
    engines = current_app.extensions["qalitel_engines"]
    if new_slug is not None:
        try:
            validate_slug(new_slug)
        except InvalidSlugError as exc:
            _refuse(str(exc))
        if db.session.query(Tenant.id).filter_by(slug=new_slug).first() is not None:
            _refuse(f"tenant {new_slug!r} already exists")
    try:
        if new_slug is None:
            done = restore(tenant, backup, _settings(), targets, engines)
        else:
            done = restore_as(tenant, backup, new_slug, _settings(), targets, engines)
    except ProvisioningError as exc:
        db.session.rollback()
        click.secho(f"Error: cannot create {new_slug}: {exc}", fg="red", err=True)
        sys.exit(1)
    except (ArchiveError, BackupError, TargetError, OSError, *DatabaseError) as exc:
        db.session.rollback()
        click.secho(f"Error: restore of {slug} refused or failed, nothing changed: {exc}",
                    fg="red", err=True)
        sys.exit(1)
    migrated = (f", migrated {done.from_revision} → {done.to_revision}"
                if done.from_revision != done.to_revision else "")
    _emit(as_json, done.__dict__, [f"{done.slug}: restored backup {done.backup_id} "
                                   f"({done.tables} tables, {done.files} files{migrated})"])


@backup_group.command("prune")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
@with_appcontext
def prune_command(as_json: bool) -> None:
    """Delete copies older than QALITEL_BACKUP_RETENTION_DAYS from every target.

    A live tenant's newest complete backup, newest deep-verified one and newest one with a
    good copy are kept whatever their age. Exits 1 naming every copy that could not be
    deleted (a target taken out of the configuration: see retire-target).
    """
    from backups.prune import prune

    results = prune(_settings(), _targets())
    lines = [f"{r.tenant}: backup {r.backup_id} pruned from {len(r.deleted)} target(s)"
             for r in results]
    _emit(as_json, {"pruned": [r.__dict__ for r in results]},
          lines or ["nothing to prune"])
    failures = [f"{r.tenant}: backup {r.backup_id}: {f}" for r in results for f in r.failures]
    if failures:
        _failed(failures)


@backup_group.command("retire-target")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print what was retired as JSON.")
@with_appcontext
def retire_target_command(name: str, as_json: bool) -> None:
    """Count every copy on NAME (a target as QALITEL_BACKUP_TARGETS named it, taken out of
    it for good) as gone: pruned, with a 'retired target' note, so prune completes.

    Refused while NAME is still configured. Deletes nothing on NAME itself. A complete
    backup with a copy there becomes partial (the next run copies it to the targets now
    configured), or failed when that was its last good copy.
    """
    from backups.retire import RetireRefused, retire_target
    from core.platform_transaction import unit_of_work

    try:
        with unit_of_work():
            done = retire_target(_settings(), name)
    except RetireRefused as exc:
        _refuse(str(exc))
    lines = [f"{done.target}: {len(done.copies)} copies counted as gone"
             + (f"; now partial: backups {', '.join(map(str, done.partial))}"
                if done.partial else "")
             + (f"; left without a good copy: backups {', '.join(map(str, done.failed))}"
                if done.failed else "")]
    _emit(as_json, done.__dict__, lines)


@backup_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the health report as JSON.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """Each live tenant's newest good backup and its age; exits 1 when any tenant has had
    no complete backup for 26 hours (what monitoring reads)."""
    from backups.status import health

    report = health()
    lines = [f"{h.tenant}: " + (f"last good backup {h.age_hours} h ago" if h.last_good_at
                                else "no good backup")
             + (f", last run {h.last_status}" if h.last_status else "")
             + (" — OVERDUE" if h.overdue else "") for h in report]
    _emit(as_json, {"tenants": [h.__dict__ for h in report]}, lines)
    overdue = [h.tenant for h in report if h.overdue]
    if overdue:
        _failed([f"{slug}: no complete backup for 26 hours" for slug in overdue])


@backup_group.command("sweep")
@click.option("--json", "as_json", is_flag=True, help="Print what was swept as JSON.")
@with_appcontext
def sweep_command(as_json: bool) -> None:
    """Settle what restores and deep verifications that died midway left: put a tenant's
    previous database back (or keep the restored one if the swap was done), and remove
    scratch databases, files and staging folders no live run holds, and copies' .partial
    files no live run writes. Exits 1 naming every leftover it could not settle."""
    from backups.sweep import sweep_leftovers

    swept = sweep_leftovers(_settings())
    lines = [*swept.settled, *(f"removed {what}" for what in swept.removed)]
    _emit(as_json, swept.as_dict(), lines or ["nothing to sweep"])
    if swept.errors:
        _failed(swept.errors)
