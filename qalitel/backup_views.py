"""The client admins' backup history at ``/t/<slug>/admin/backups``: what the host keeps of
their company (read from the platform's backup catalogue, this tenant's rows only)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from backups import history
from backups.models import BackupStatus
from core import config, validation
from core.web import admin_required
from qalitel.records.files.service import human_size
from tenants.context import current_tenant

bp = Blueprint("backups", __name__, url_prefix="/admin/backups")

STATUS_LABELS = {
    BackupStatus.RUNNING: _l("In progress"),
    BackupStatus.COMPLETE: _l("Complete"),
    BackupStatus.PARTIAL: _l("Partial"),
    BackupStatus.FAILED: _l("Failed"),
    BackupStatus.PRUNING: _l("Being deleted (past the retention window)"),
    BackupStatus.PRUNED: _l("Deleted (past the retention window)"),
}
COPY_LABELS = {
    "ok": _l("saved"),
    "damaged": _l("damaged"),
    "failed": _l("failed"),
    "pruned": _l("deleted"),
    "absent": _l("not written"),
}
VERIFICATION_LABELS = {
    "deep_ok": _l("Restored and compared: verified"),
    "deep_failed": _l("Restore test failed"),
    "checked_ok": _l("Checksums checked"),
    "check_failed": _l("Checksum check failed"),
}


def target_label(label: history.TargetLabel) -> str:
    """"medium 1", "S3", "former medium 2"… (never a path)."""
    from flask_babel import gettext as _

    if label.kind == "s3":
        return _("S3") if label.of == 1 else _("S3 %(number)d", number=label.number)
    if label.kind == "former":
        return _("former medium %(number)d", number=label.number)
    return _("medium %(number)d", number=label.number)


@bp.get("/")
@admin_required
def index():
    settings = config.settings()
    page = history.history_page(settings, current_tenant().uid,
                                validation.id_or_none(request.args.get("page", "1")) or 1)
    return render_template(
        "backups/history.html", page=page, days=settings.backup_retention_days,
        media=history.media_count(settings), status_labels=STATUS_LABELS,
        copy_labels=COPY_LABELS, verification_labels=VERIFICATION_LABELS,
        target_label=target_label, file_size=human_size)
