"""Background exports, whatever they hold: request, claim, build, mail, download, expiry.

A kind of export is a function writing a ZIP, registered with :func:`register_export_kind`
(``'tenant'`` here: the client's full archive; ``'personal'``: a user's own data, registered
by its module). The life of one ``data_exports`` row:

- requested (``pending``), at most one pending or running per tenant for kind ``'tenant'``
  and per user for other kinds (a unique ``active_key`` enforces it under races);
- claimed by one worker with a conditional ``UPDATE`` pending → running (also running →
  running once :data:`STALE_AFTER` has passed: its worker is presumed dead), so
  ``jobs run-due`` on several hosts at once builds it once;
- built inside the tenant's context into ``<instance>/exports/``; ``ready`` with a new
  random download token (only its hash is stored) mailed to the requester, valid
  ``QALITEL_EXPORT_DAYS``; or ``failed`` with its error, which the requester sees and may
  retry;
- past its validity, ``expired``: :func:`expire_exports` deletes the file.

What only the request knows (the personal export's decoded preference cookie) is handed
to the build as *inputs*: a small JSON file ``<id>.input.json`` beside the exports, written
when the export is requested (or retried) and deleted as soon as the build ends, ready or
failed; :func:`expire_exports` deletes those a crash left.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from core import clock, dates, mail, platform_transaction
from core.config import Settings
from core.config import settings as current_settings
from core.db import db
from core.links import tenant_link
from qalitel.exports.files import (
    drop_inputs,
    exports_dir,
    read_inputs,
    sweep_inputs,
    write_inputs,
)
from qalitel.exports.models import ACTIVE_STATES, DataExport, ExportState
from qalitel.exports.tenant import write_tenant_archive
from qalitel.users.models import User
from tenants.context import current_context, tenant_context
from tenants.engines import TenantInfo
from tenants.registry import LIVE_STATUSES, Tenant

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=2)
ERROR_MAX = 2000


@dataclass(frozen=True)
class ExportJob:
    """What a build function is given; it runs inside ``tenant_context(tenant)``."""

    id: int
    kind: str
    tenant: TenantInfo
    subject_user_id: int
    settings: Settings
    when: datetime
    #: What the request handed over (:func:`request_export`'s ``inputs``); {} if none.
    inputs: Mapping[str, Any] = field(default_factory=dict)


BuildFn = Callable[[ExportJob, Path], None]
"""Writes the export's ZIP at the path given (a new file); raises to fail the job."""
_kinds: dict[str, BuildFn] = {}
#: Modules registering a kind when imported; :func:`process_pending_exports` imports them
#: all, so a worker started by any command knows every kind (add yours here).
KIND_MODULES: list[str] = ["qalitel.my_data.export_request"]


def register_export_kind(kind: str, build: BuildFn) -> BuildFn:
    """Make ``build`` the builder of exports of ``kind`` (the last registration wins)."""
    if not kind.isidentifier() or len(kind) > 20:
        raise ValueError(f"bad export kind {kind!r}")
    _kinds[kind] = build
    return build


class ExportBusyError(RuntimeError):
    """An export of this kind is already pending or running for this tenant or user."""


aware = clock.as_utc  # stored datetimes as UTC (SQLite hands them back naive)


def _active_key(kind: str, tenant_uid: str, user_id: int) -> str:
    return f"{kind}:{tenant_uid}" if kind == "tenant" else f"{kind}:{tenant_uid}:{user_id}"


def _busy(kind: str) -> ExportBusyError:
    return ExportBusyError(_("An export is already being prepared; you will get an e-mail "
                             "when it is ready.") if kind == "tenant" else
                           _("Your export is already being prepared; you will get an e-mail "
                             "when it is ready."))


def _activate(job: DataExport) -> None:
    """Mark ``job`` pending or running for its tenant (or user): :class:`ExportBusyError`
    when another is. The unique key settles a race between two requests; the loser's
    platform transaction is rolled back (SQLite's driver has no usable savepoints)."""
    key = _active_key(job.kind, job.tenant_uid, job.subject_user_id)
    with db.session.no_autoflush:
        taken = db.session.execute(
            select(DataExport.id).where(DataExport.active_key == key)).first()
    if taken is not None:
        raise _busy(job.kind)
    job.active_key = key
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _busy(job.kind) from None


def valid_for(settings: Settings) -> timedelta:
    """How long a built export's link and file live (``QALITEL_EXPORT_DAYS``)."""
    return timedelta(days=settings.export_days)


def request_export(kind: str, tenant_uid: str, user_id: int,
                   inputs: Mapping[str, Any] | None = None) -> DataExport:
    """A new pending export (flushed; the request commits); :class:`ExportBusyError` when
    one of the same kind is pending or running for the same tenant (or user). ``inputs``
    (JSON values) reach the build as :attr:`ExportJob.inputs` and are deleted after it."""
    if kind not in _kinds:
        raise ValueError(f"unknown export kind {kind!r}")
    job = DataExport(kind=kind, tenant_uid=tenant_uid, subject_user_id=user_id,
                     state=ExportState.PENDING, attempts=0, created_at=clock.now())
    db.session.add(job)
    try:
        _activate(job)
    except ExportBusyError:
        if job in db.session:
            db.session.expunge(job)
        raise
    write_inputs(job, inputs)
    return job


def retry_export(job: DataExport, inputs: Mapping[str, Any] | None = None) -> DataExport:
    """A failed export back to pending (its error kept until the next attempt clears it),
    with the retrying request's ``inputs``."""
    if job.state is not ExportState.FAILED:
        raise ValueError("only a failed export is retried")
    _activate(job)
    job.state = ExportState.PENDING
    job.finished_at = None
    db.session.flush()
    write_inputs(job, inputs)
    return job


def exports_of(kind: str, tenant_uid: str, user_id: int | None = None,
               limit: int = 10) -> list[DataExport]:
    query = select(DataExport).where(DataExport.kind == kind,
                                     DataExport.tenant_uid == tenant_uid)
    if user_id is not None:
        query = query.where(DataExport.subject_user_id == user_id)
    query = query.order_by(DataExport.id.desc()).limit(limit)
    return list(db.session.execute(query).scalars())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_by_token(token: str) -> DataExport | None:
    if not 20 <= len(token) <= 100:
        return None
    return db.session.execute(select(DataExport).where(
        DataExport.token_hash == token_hash(token))).scalar_one_or_none()


def is_expired(job: DataExport, now: datetime | None = None) -> bool:
    expires = aware(job.expires_at)
    return job.state is ExportState.EXPIRED or (
        job.state is ExportState.READY and expires is not None
        and expires <= (now or clock.now()))


def _claim(job_id: int, now: datetime) -> bool:
    """Take one export for this worker; committed at once so other workers see it."""
    result = db.session.execute(
        update(DataExport)
        .where(DataExport.id == job_id,
               or_(DataExport.state == ExportState.PENDING,
                   and_(DataExport.state == ExportState.RUNNING,
                        DataExport.started_at < now - STALE_AFTER)))
        .values(state=ExportState.RUNNING, started_at=now, attempts=DataExport.attempts + 1,
                error=None)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


@dataclass(frozen=True)
class Requester:
    """Who is mailed the link (read from the tenant before the build)."""

    name: str
    email: str
    locale: str | None


def _message(settings: Settings, job: DataExport, tenant: Tenant, user: Requester,
             token: str):
    link = tenant_link(settings, tenant.slug, f"/exports/{token}")
    with force_locale(user.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "fr")):
        subject = (_("The export of %(company)s is ready", company=tenant.name)
                   if job.kind == "tenant" else
                   _("Your personal data export from %(company)s is ready", company=tenant.name))
        body = render_template("mail/export_ready.txt", user=user, company=tenant.name,
                               kind=job.kind, link=link, days=settings.export_days,
                               until=dates.datetime_text(job.expires_at,
                                                         tz=dates.default_zone()))
    return mail.build_message(settings, user.email, subject, body)


class _Superseded(RuntimeError):
    """Another worker claimed the export again meanwhile (this one was presumed dead)."""


def _still_ours(job: DataExport, claimed: datetime) -> None:
    db.session.refresh(job)
    if job.state is not ExportState.RUNNING or aware(job.started_at) != claimed:
        raise _Superseded(f"export {job.id} was claimed by another worker")


def _build(job: DataExport, settings: Settings, claimed: datetime) -> None:
    tenant = db.session.execute(select(Tenant).where(
        Tenant.uid == job.tenant_uid)).scalar_one_or_none()
    if tenant is None or tenant.status not in LIVE_STATUSES:
        raise RuntimeError("the tenant is no longer available")
    build = _kinds.get(job.kind)
    if build is None:
        raise RuntimeError(f"no builder registered for exports of kind {job.kind!r}")
    info, spec = TenantInfo.from_row(tenant), (job.id, job.kind, job.subject_user_id)
    inputs = read_inputs(settings, job.id)
    db.session.commit()  # hold no platform transaction while the file is built
    final = exports_dir(settings) / f"{job.id}-{secrets.token_hex(8)}.zip"
    partial = final.with_suffix(".partial")
    try:
        with tenant_context(info) as ctx:
            found = ctx.session.get(User, spec[2])
            if found is None or found.is_suspended:
                raise RuntimeError("the requesting user's account no longer exists")
            user = Requester(found.name, found.email, found.locale)
            ctx.session.rollback()  # its connection back to the pool while the file is built
            build(ExportJob(spec[0], spec[1], info, spec[2], settings, clock.now(), inputs),
                  partial)
            os.replace(partial, final)
            os.chmod(final, 0o600)
            digest, size = hashlib.sha256(), 0
            with open(final, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
            _still_ours(job, claimed)
            token = secrets.token_urlsafe(32)
            job.token_hash, job.file_path = token_hash(token), str(final)
            job.file_size, job.file_sha256 = size, digest.hexdigest()
            job.state, job.active_key = ExportState.READY, None
            job.finished_at, job.expires_at = clock.now(), clock.now() + valid_for(settings)
            message = _message(settings, job, tenant, user, token)
    except BaseException:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise
    platform_transaction.after_commit(lambda: mail.deliver(message))


def _run(job_id: int, settings: Settings, claimed: datetime) -> None:
    job = db.session.get(DataExport, job_id)
    assert job is not None
    try:
        _build(job, settings, claimed)
        db.session.commit()
        drop_inputs(settings, job_id)
    except _Superseded:
        db.session.rollback()
        log.warning("export %s: another worker took it over; this copy is discarded", job_id)
    except Exception as exc:
        db.session.rollback()
        log.exception("export %s failed", job_id)
        job = db.session.get(DataExport, job_id)
        assert job is not None
        try:
            _still_ours(job, claimed)
        except _Superseded:
            db.session.rollback()
            return
        job.state, job.active_key = ExportState.FAILED, None
        job.error = (str(exc) or type(exc).__name__)[:ERROR_MAX]
        job.finished_at = clock.now()
        db.session.commit()
        drop_inputs(settings, job_id)


def process_pending_exports(app: Flask, *, limit: int | None = None) -> list[int]:
    """Build every pending export (and running ones whose worker died); safe to run on
    several hosts at once. Returns the ids this call built or failed."""
    done: list[int] = []
    for module in KIND_MODULES:
        importlib.import_module(module)
    with app.app_context():
        settings = current_settings()
        now = clock.now()
        candidates = db.session.execute(
            select(DataExport.id).where(or_(
                DataExport.state == ExportState.PENDING,
                and_(DataExport.state == ExportState.RUNNING,
                     DataExport.started_at < now - STALE_AFTER)))
            .order_by(DataExport.id).limit(limit)).scalars().all()
        db.session.rollback()
        for job_id in candidates:
            claimed = clock.now()
            if _claim(job_id, claimed):
                _run(job_id, settings, claimed)
                done.append(job_id)
    return done


def expire_exports(app: Flask | None = None) -> int:
    """Delete the files of exports past their validity (state ``expired``), partial files
    dead workers left, and inputs no pending or running export needs any longer; returns
    how many exports expired."""
    if app is not None:
        with app.app_context():
            return expire_exports()
    now = clock.now()
    due = db.session.execute(select(DataExport).where(
        DataExport.state == ExportState.READY, DataExport.expires_at <= now)).scalars().all()
    for job in due:
        if job.file_path:
            Path(job.file_path).unlink(missing_ok=True)
        job.state, job.file_path = ExportState.EXPIRED, None
    db.session.commit()
    cutoff = time.time() - STALE_AFTER.total_seconds()
    folder = exports_dir(current_settings())
    for leftover in folder.glob("*.partial"):
        if leftover.stat().st_mtime < cutoff:
            leftover.unlink(missing_ok=True)
    sweep_inputs(folder, cutoff)
    return len(due)


def build_tenant_archive(job: ExportJob, path: Path) -> None:
    """Kind ``'tenant'``: the client's full archive (:mod:`qalitel.exports.tenant`)."""
    write_tenant_archive(job.tenant, job.settings, current_context().engine, path, job.when)


register_export_kind("tenant", build_tenant_archive)

__all__ = ["ACTIVE_STATES", "BuildFn", "ExportBusyError", "ExportJob", "expire_exports",
           "process_pending_exports", "register_export_kind", "request_export", "retry_export"]
