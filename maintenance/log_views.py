"""The client admins' view of their tenant's maintenance access log, and its download."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db
from core.validation import id_or_none
from core.web import admin_required
from maintenance import audit
from maintenance.models import MaintenanceRequest, StaffUser
from tenants.context import current_tenant

bp = Blueprint("audit_log", __name__, url_prefix="/maintenance")

PAGE_SIZE = 100

EVENT_LABELS = {
    "request": _l("Access requested"),
    "approval": _l("Request approved"),
    "denial": _l("Request denied"),
    "request_expired": _l("Request expired unanswered"),
    "grant_expired": _l("Access window ended"),
    "revocation": _l("Access revoked"),
    "session_start": _l("Session started"),
    "view": _l("Data viewed"),
    "change": _l("Data changed"),
    "change_failed": _l("Change refused by the database (not made)"),
    "session_end": _l("Session ended"),
    "export": _l("Full export of your data by SCOQI"),
}
ACTOR_LABELS = {"staff": _l("SCOQI engineer"), "client": _l("Your company"),
                "system": _l("System")}


def _requests(tenant_id: int, public_ids: set[str]) -> dict[str, MaintenanceRequest]:
    """This tenant's requests named on the page, with their engineer (never another's)."""
    if not public_ids:
        return {}
    rows = db.session.execute(
        select(MaintenanceRequest, StaffUser)
        .join(StaffUser, StaffUser.id == MaintenanceRequest.engineer_id)
        .where(MaintenanceRequest.tenant_id == tenant_id,
               MaintenanceRequest.public_id.in_(public_ids))).all()
    return {req.public_id: req for req, _engineer in rows}


@bp.get("/log")
@admin_required
def index():
    tenant = current_tenant()
    result = audit.verify(tenant.id)
    sealed = audit.head(tenant.id)
    pages = max((sealed.count + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(id_or_none(request.args.get("page", "1")) or 1, pages)
    entries = audit.entries_page(tenant.id, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    requests = _requests(tenant.id, {e.request_public_id for e in entries
                                     if e.request_public_id})
    return render_template("maintenance/log.html", result=result, head=sealed,
                           entries=entries, requests=requests, page=page, pages=pages,
                           event_labels=EVENT_LABELS, actor_labels=ACTOR_LABELS)


@bp.get("/log.jsonl")
@admin_required
def download():
    tenant = current_tenant()
    lines = audit.iter_jsonl(tenant.id)
    response = Response(stream_with_context(lines), mimetype="application/jsonl")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="access-log-{tenant.slug}.jsonl"')
    response.headers["Cache-Control"] = "no-store"
    return response
