"""The client admin's full-export page, and the download of any export by its mailed link.

``/t/<slug>/admin/export``: request the full export (a background job), see the last ones
with their state, retry a failed one. ``/t/<slug>/exports/<token>``: the file, only for the
user it was made for, signed in to that tenant (and, for the full export, still an
administrator: 403 otherwise); 410 once expired, 404 for anyone else.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from core import clock, config
from core.db import db
from core.web import admin_required, is_admin
from qalitel.exports.jobs import (
    ExportBusyError,
    aware,
    exports_of,
    find_by_token,
    is_expired,
    request_export,
    retry_export,
)
from qalitel.exports.models import DataExport, ExportState
from tenants.context import current_tenant

bp = Blueprint("exports", __name__)


def state_labels() -> dict[ExportState, str]:
    return {ExportState.PENDING: _("Waiting to start"), ExportState.RUNNING: _("Being prepared"),
            ExportState.READY: _("Ready: the link was sent by e-mail"),
            ExportState.FAILED: _("Failed"), ExportState.EXPIRED: _("Expired")}


def _page(error: str | None = None, status: int = 200):
    exports = exports_of("tenant", current_tenant().uid)
    busy = any(e.state in (ExportState.PENDING, ExportState.RUNNING) for e in exports)
    return render_template("exports/admin.html", exports=exports, busy=busy, error=error,
                           labels=state_labels(), utc=aware, now=clock.now(),
                           export_days=config.settings().export_days), status


@bp.get("/admin/export")
@admin_required
def admin_page():
    return _page()


@bp.post("/admin/export")
@admin_required
def request_full_export():
    try:
        request_export("tenant", current_tenant().uid, current_user.id)
    except ExportBusyError as exc:
        return _page(str(exc), 409)
    flash(_("The export was requested. You will get an e-mail with a download link when it "
            "is ready."), "info")
    return redirect(url_for(".admin_page"))


@bp.post("/admin/export/<int:export_id>/retry")
@admin_required
def retry(export_id: int):
    job = db.session.get(DataExport, export_id)
    if job is None or job.tenant_uid != current_tenant().uid or job.kind != "tenant":
        abort(404)
    if job.state is not ExportState.FAILED:
        return _page(_("Only a failed export can be retried."), 409)
    try:
        retry_export(job)
    except ExportBusyError as exc:
        return _page(str(exc), 409)
    flash(_("The export will be tried again."), "info")
    return redirect(url_for(".admin_page"))


@bp.get("/exports/<token>")
@login_required
def download(token: str):
    job = find_by_token(token)
    if (job is None or job.tenant_uid != current_tenant().uid
            or job.subject_user_id != current_user.id):
        abort(404)
    if job.kind == "tenant" and not is_admin():
        abort(403)  # no longer an administrator: the whole company's data is not theirs
    return send_export(job)


def send_export(job: DataExport):
    """The file of ``job``, already checked to be the signed-in user's: 410 once expired,
    404 while not ready or if the file is gone."""
    if is_expired(job):
        return render_template("exports/expired.html", job=job, utc=aware), 410
    if job.state is not ExportState.READY or not job.file_path:
        abort(404)
    path = Path(job.file_path)
    if not path.is_file():
        abort(404)
    day = aware(job.finished_at) or clock.now()
    response = send_file(path, mimetype="application/zip", as_attachment=True,
                         download_name=f"{current_tenant().slug}-{job.kind}-export-"
                                       f"{day:%Y-%m-%d}.zip", max_age=0, conditional=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
