"""The export a closing tenant's administrators are mailed: built at closure, before the live
data is dropped, and served outside the tenant (whose pages answer 410 once it is closed).

- :func:`build_closure_export` is the closure's export-link hook
  (:func:`qalitel.closure.on_closure_export_link`, registered by :mod:`qalitel.tenancy`): the
  tenant's full archive (the same writer as ``tenants export``, logged in its access log like
  an operator's export) goes to the platform's export folder, recorded as a ``data_exports``
  row of kind ``'closure'`` (no user: ``subject_user_id`` 0) already ``ready``. Its link,
  ``/closure-export/<token>``, is one for the company, mailed to each administrator; only the
  token's SHA-256 is stored.
- It is valid until the purge date (00:00 UTC that day), or until the purge if that comes
  first: :func:`purge_closure_exports`, called by the purge, deletes the file and names it in
  the deletion record. :func:`withdraw_closure_exports` deletes it when the tenant is
  reopened (it is alive again; a new closure builds a new export).
- :func:`drop_tenant_exports`, called at the drop and again at the purge, deletes every
  other export of the tenant in that folder (the app's exports, ``data_exports`` rows of its
  uid, and ``tenants export``'s default ``<slug>-export-<time>.zip``), each named in the
  deletion record.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy import select

from backups.archive import file_sha256
from core import clock
from core.config import Settings
from core.config import settings as current_settings
from core.db import db
from core.links import platform_link
from qalitel.exports.jobs import exports_dir, token_hash
from qalitel.exports.models import DataExport, ExportState
from qalitel.exports.operator import CLOSURE, logged_export
from tenants.deletion import DeletionItem, DeletionRecord, ItemKind
from tenants.registry import Tenant

KIND = "closure"
NO_USER = 0
PATH = "/closure-export/"
REASON = "closure: the full export offered to the company's administrators"
PLACE = "platform export folder"


def link_for(token: str) -> str:
    return platform_link(current_settings(), PATH + token)


def valid_until(tenant: Tenant) -> datetime:
    """The link's end: the purge date's first instant (UTC)."""
    day = tenant.purge_due_at or clock.now().date()
    return datetime.combine(day, time.min, tzinfo=UTC)


def closure_exports(tenant_uid: str) -> list[DataExport]:
    return list(db.session.execute(select(DataExport).where(
        DataExport.kind == KIND, DataExport.tenant_uid == tenant_uid)
        .order_by(DataExport.id)).scalars())


def _delete_file(job: DataExport) -> None:
    if job.file_path:
        Path(job.file_path).unlink(missing_ok=True)
    job.state, job.file_path = ExportState.EXPIRED, None


def build_closure_export(tenant: Tenant) -> str | None:
    """The hook: build the closing tenant's export and return its link (committed)."""
    settings = current_settings()
    withdraw_closure_exports(tenant)
    final = exports_dir(settings) / f"closure-{secrets.token_hex(12)}.zip"
    made = logged_export(settings, tenant, final, REASON, purpose=CLOSURE)
    try:
        token = secrets.token_urlsafe(32)
        now = clock.now()
        db.session.add(DataExport(
            token_hash=token_hash(token), tenant_uid=tenant.uid, kind=KIND,
            subject_user_id=NO_USER, state=ExportState.READY, attempts=1, created_at=now,
            started_at=now, finished_at=now, expires_at=valid_until(tenant),
            file_path=str(final), file_size=made.size, file_sha256=made.sha256))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        final.unlink(missing_ok=True)
        raise
    return link_for(token)


def withdraw_closure_exports(tenant: Tenant) -> int:
    """Delete the closure exports of a reopened tenant (committed); how many had a file."""
    found = [job for job in closure_exports(tenant.uid) if job.file_path]
    for job in found:
        _delete_file(job)
    db.session.commit()
    return len(found)


def purge_closure_exports(tenant: Tenant, record: DeletionRecord, by: str) -> int:
    """At the purge: delete every closure export file left (expired ones were already) and
    name each export built at this closure in the deletion record (flushed, not committed)."""
    named = 0
    for job in closure_exports(tenant.uid):
        _delete_file(job)
        if job.file_sha256 is None or clock.as_utc(job.created_at) < clock.as_utc(record.closed_at):
            continue  # never built, or an earlier closure's, withdrawn at the reopen
        record.items.append(DeletionItem(
            kind=ItemKind.EXPORT, name=f"closure export {job.id}", place=PLACE,
            sha256=job.file_sha256, size=job.file_size, removed_at=clock.now(),
            removed_by=by))
        named += 1
    db.session.flush()
    return named



def drop_tenant_exports(settings: Settings, tenant: Tenant, record: DeletionRecord,
                        by: str) -> int:
    """Delete the tenant's exports but the closure's (its link lasts until the purge): the
    files of its ``data_exports`` rows (rows ended: expired, no file, no longer active) and
    the operator's ``<slug>-export-<time>.zip`` in the export folder, each named in the
    deletion record (flushed, not committed); how many files went."""
    removed = 0

    def item(name: str, sha256: str | None, size: int | None) -> None:
        record.items.append(DeletionItem(
            kind=ItemKind.EXPORT, name=name, place=PLACE, sha256=sha256, size=size,
            removed_at=clock.now(), removed_by=by))

    jobs = db.session.execute(select(DataExport).where(
        DataExport.tenant_uid == tenant.uid, DataExport.kind != KIND)
        .order_by(DataExport.id)).scalars()
    for job in jobs:
        path = Path(job.file_path) if job.file_path else None
        if path is not None and path.exists():
            sha256, size = file_sha256(path)
            path.unlink()
            item(f"{job.kind} export {job.id}", sha256, size)
            removed += 1
        job.state, job.file_path, job.active_key = ExportState.EXPIRED, None, None
    pattern = re.compile(re.escape(tenant.slug) + r"-export-\d{8}-\d{6}\.zip")
    for path in sorted(exports_dir(settings).iterdir()):
        if path.is_file() and pattern.fullmatch(path.name):
            sha256, size = file_sha256(path)
            path.unlink()
            item(path.name, sha256, size)
            removed += 1
    db.session.flush()
    return removed
