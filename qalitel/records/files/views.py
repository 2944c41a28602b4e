"""Pages of attached files: upload (multipart, CSRF), download, removal, on the records
blueprint. A file is reached through its record or action, fetched with the visibility
rules first: a file of something the person cannot see, or of another record, is a 404."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from core import filetypes
from core.config import settings
from core.forms import SafeForm
from qalitel.errors import render_error
from qalitel.records.files import service
from qalitel.records.files.service import Owner
from qalitel.records.forms import ConfirmForm
from qalitel.records.service.checks import ensure_writable, is_locked
from qalitel.records.web import action_or_404, bp, id_or_404, me, record_or_404, render

log = logging.getLogger(__name__)

UPLOADS = ("record_file_upload", "action_file_upload")
FORM_OVERHEAD = 64 * 1024
"""Bytes a multipart body may hold besides the file (boundaries, headers, CSRF token)."""
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


class FileForm(SafeForm):
    upload = FileField()


def files_context(owner: Owner) -> dict[str, Any]:
    """What a detail page shows of its files (``templates/records/_files.html``)."""
    config = settings()
    can_change = service.can_change_files(me(), owner) and not is_locked(owner)
    return {"files": service.files_of(owner), "can_change_files": can_change,
            "file_form": FileForm() if can_change else None, "file_confirm": ConfirmForm(),
            "file_max_size": service.human_size(config.file_max_bytes),
            "file_max_count": config.file_max_count, "file_size": service.human_size,
            "file_kinds": ", ".join(kind.upper() for kind in config.file_types)}


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Upload pages read up to the configured file size for a signed-in person (other pages
    and anonymous requests keep the app's limit). The tenant is open by now (its own
    preprocessor runs first) and this runs before the CSRF check reads the body."""
    if endpoint and endpoint.rsplit(".", 1)[-1] in UPLOADS and current_user.is_authenticated:
        request.max_content_length = settings().file_max_bytes + FORM_OVERHEAD


@bp.app_errorhandler(RequestEntityTooLarge)
def _too_large(_error):
    endpoint = request.endpoint or ""
    if endpoint.rsplit(".", 1)[-1] in UPLOADS:
        message = _("The file is too large (at most %(max)s).",
                    max=service.human_size(settings().file_max_bytes))
    else:
        message = _("What was sent is too large.")
    return render_error(413, message=message)


def _refused(owner: Owner, message: str, back: str):
    return render("records/file_refused.html", 400, message=message, back=back, owner=owner)


def _upload(owner: Owner, back: str):
    if not service.can_change_files(me(), owner):
        abort(403)
    ensure_writable(owner)
    form = FileForm()
    if not form.validate_on_submit():
        return _refused(owner, _("The form has expired or is incomplete: try again."), back)
    upload = form.upload.data
    if not isinstance(upload, FileStorage) or not upload.filename:
        return _refused(owner, _("Choose a file to attach."), back)
    try:
        attachment = service.attach(me(), owner, upload.stream, upload.filename)
    except service.FileError as exc:
        return _refused(owner, str(exc), back)
    flash(_("File %(name)s attached.", name=attachment.name), "success")
    return redirect(back, 303)


def _download(owner: Owner, file_id: int):
    attachment = service.file_of(owner, id_or_404(file_id))
    if attachment is None:
        abort(404)
    path = service.tenant_store().path(attachment.sha256)
    if not path.is_file():
        log.error("file %s of attachment %d is missing", attachment.sha256, attachment.id)
        abort(404)
    # The type comes from the allow-list, by the kind detected: never from what was sent.
    # Werkzeug adds "; charset=utf-8" to text types itself.
    mimetype = filetypes.KINDS.get(attachment.kind, "application/octet-stream").split(";")[0]
    response = send_file(path, mimetype=mimetype, as_attachment=True,
                         download_name=attachment.name, conditional=False, etag=False,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _remove(owner: Owner, file_id: int, back: str):
    attachment = service.file_of(owner, id_or_404(file_id))
    if attachment is None:
        abort(404)
    if not service.can_change_files(me(), owner):
        abort(403)
    ensure_writable(owner)
    if not ConfirmForm().validate_on_submit():
        return _refused(owner, _("The form has expired or is incomplete: try again."), back)
    service.remove(me(), owner, attachment)
    flash(_("File %(name)s removed.", name=attachment.name), "success")
    return redirect(back, 303)


def _record_page(record_id: int) -> str:
    return url_for("tenant.records.show", record_id=record_id)


def _action_page(action_id: int) -> str:
    return url_for("tenant.records.action_show", action_id=action_id)


@bp.post("/records/<int:record_id>/files")
@login_required
def record_file_upload(record_id: int):
    record = record_or_404(record_id)
    return _upload(record, _record_page(record.id))


@bp.get("/records/<int:record_id>/files/<int:file_id>")
@login_required
def record_file(record_id: int, file_id: int):
    return _download(record_or_404(record_id), file_id)


@bp.post("/records/<int:record_id>/files/<int:file_id>/remove")
@login_required
def record_file_remove(record_id: int, file_id: int):
    record = record_or_404(record_id)
    return _remove(record, file_id, _record_page(record.id))


@bp.post("/actions/<int:action_id>/files")
@login_required
def action_file_upload(action_id: int):
    action = action_or_404(action_id)
    return _upload(action, _action_page(action.id))


@bp.get("/actions/<int:action_id>/files/<int:file_id>")
@login_required
def action_file(action_id: int, file_id: int):
    return _download(action_or_404(action_id), file_id)


@bp.post("/actions/<int:action_id>/files/<int:file_id>/remove")
@login_required
def action_file_remove(action_id: int, file_id: int):
    action = action_or_404(action_id)
    return _remove(action, file_id, _action_page(action.id))
