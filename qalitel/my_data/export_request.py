"""The personal export ("download my data") as a background export of kind ``personal``
(:mod:`qalitel.exports.jobs`): the page queues it, ``jobs run-due`` builds it, the user is
mailed a link; the page shows its state and, once ready, the download.

At most one request a day per user (:data:`ONCE_PER`; a failed export does not count: it
is retried instead). The preference cookie cannot be read by a background job, so the
request hands its decoded content over as the job's *inputs*: a file beside the exports,
deleted as soon as the build ends (see :mod:`qalitel.exports.jobs`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from core import clock, config, dates, validation
from core.db import db
from qalitel.exports.files import input_path
from qalitel.exports.jobs import (
    ExportJob,
    aware,
    exports_of,
    register_export_kind,
    request_export,
    retry_export,
)
from qalitel.exports.models import ACTIVE_STATES, DataExport, ExportState
from qalitel.my_data.archive import personal_zip
from qalitel.my_data.collect import personal_data
from tenants.context import current_tenant, tdb

KIND = "personal"
ONCE_PER = timedelta(days=1)


class TooSoonError(RuntimeError):
    """A second request within :data:`ONCE_PER` (answered 429, with ``Retry-After``)."""

    def __init__(self, next_at: datetime) -> None:
        super().__init__(_("You already asked for your data in the last 24 hours: you may "
                           "ask again from %(when)s.",
                           when=dates.datetime_text(next_at)))
        self.next_at = next_at


def build_personal_export(job: ExportJob, path: Path) -> None:
    """Kind ``personal``: the ZIP of everything the tenant holds about the requester, with
    the preferences their cookie held when they asked."""
    prefs = job.inputs.get("prefs")
    data = personal_data(tdb, job.subject_user_id, prefs if isinstance(prefs, dict) else None,
                         job.tenant.uid)
    with open(path, "xb") as out:
        personal_zip(data, out, tenant=job.tenant.slug, user_id=job.subject_user_id)


register_export_kind(KIND, build_personal_export)


def personal_exports(user_id: int, limit: int = 5) -> list[DataExport]:
    return exports_of(KIND, current_tenant().uid, user_id, limit)


def next_request_at(user_id: int) -> datetime | None:
    """When ``user_id`` may ask again, if not now: a day after their last request that did
    not fail."""
    since = clock.now() - ONCE_PER
    last = db.session.execute(
        select(DataExport.created_at).where(
            DataExport.kind == KIND, DataExport.tenant_uid == current_tenant().uid,
            DataExport.subject_user_id == user_id, DataExport.created_at > since,
            DataExport.state != ExportState.FAILED)
        .order_by(DataExport.created_at.desc()).limit(1)).scalar()
    return None if last is None else aware(last) + ONCE_PER  # type: ignore[operator]


def _inputs(prefs: dict[str, Any] | None) -> dict[str, Any]:
    return {"prefs": prefs or {}}


def request_personal_export(user_id: int, prefs: dict[str, Any] | None = None) -> DataExport:
    """Queue the export of ``user_id``'s data; ``prefs``: their decoded cookie, now.
    :class:`~qalitel.exports.jobs.ExportBusyError` while one is pending or running,
    :class:`TooSoonError` within a day of the last one."""
    active = [job for job in personal_exports(user_id)
              if job.state in (ExportState.PENDING, ExportState.RUNNING)]
    if not active:
        next_at = next_request_at(user_id)
        if next_at is not None:
            raise TooSoonError(next_at)
    return request_export(KIND, current_tenant().uid, user_id, _inputs(prefs))


def own_export(export_id: object, user_id: int) -> DataExport | None:
    """Export ``export_id`` if it is ``user_id``'s personal export in this tenant."""
    export_id = validation.id_or_none(export_id)
    job = db.session.get(DataExport, export_id) if export_id is not None else None
    if (job is None or job.kind != KIND or job.tenant_uid != current_tenant().uid
            or job.subject_user_id != user_id):
        return None
    return job


def retry_personal_export(job: DataExport, prefs: dict[str, Any] | None = None) -> None:
    """A failed export of the user's data tried again, with their cookie as it is now
    (``ValueError`` if it did not fail; ``ExportBusyError`` if another is on its way)."""
    retry_export(job, _inputs(prefs))


def forget_exports(user_id: int) -> int:
    """On erasure: the person's exports are deleted at once (files and inputs), not kept
    until they expire; a pending or running one fails. Returns how many were touched."""
    settings = config.settings()
    jobs = db.session.execute(select(DataExport).where(
        DataExport.kind == KIND, DataExport.tenant_uid == current_tenant().uid,
        DataExport.subject_user_id == user_id,
        DataExport.state.in_((*ACTIVE_STATES, ExportState.READY)))).scalars().all()
    for job in jobs:
        if job.file_path:
            Path(job.file_path).unlink(missing_ok=True)
        input_path(settings, job.id).unlink(missing_ok=True)
        if job.state is ExportState.READY:
            job.state, job.file_path, job.token_hash = ExportState.EXPIRED, None, None
        else:
            job.state, job.active_key = ExportState.FAILED, None
            job.error, job.finished_at = "account deleted", clock.now()
    db.session.flush()
    return len(jobs)
