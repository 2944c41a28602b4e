"""Report pages: a record's PDF and 8D report (fetched like the record's page: a record the
person cannot see is a 404), and the client admin's branding page (the logo).

Laying out a PDF costs a fraction of a second of CPU: each person may have
``REPORT_LIMIT_PER_USER`` of them (app config, through ``Settings.extra``), then 429."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage

from core import clock
from core import throttle as store
from core.forms import SafeForm
from core.web import admin_required
from qalitel.auth.throttle import by_user
from qalitel.records.files.service import human_size
from qalitel.records.forms import ConfirmForm
from qalitel.records.models import NonConformity
from qalitel.records.web import me, record_or_404
from qalitel.reports import branding, content
from tenants.context import current_tenant

bp = Blueprint("reports", __name__)

NO_STORE = "private, no-store"
LIMIT_KEY = "REPORT_LIMIT_PER_USER"
DEFAULT_LIMIT = "20 per minute;200 per hour"


@bp.record_once
def _check_limits(state) -> None:
    """A limit the throttle cannot read stops the start-up, not the first report."""
    state.app.config.setdefault(LIMIT_KEY, DEFAULT_LIMIT)
    store.parse_limits(state.app.config[LIMIT_KEY])


class LogoForm(SafeForm):
    logo = FileField()


def _report(record: NonConformity) -> content.Report:
    return content.build(me(), record, tenant_name=current_tenant().name,
                         logo_url=branding.data_url(branding.current()), now=clock.now())


def _spent() -> Response | None:
    """429 once the person has had their share of PDFs; None (one unit taken) otherwise."""
    limits = current_app.config[LIMIT_KEY]
    try:
        store.of_app().acquire(store.charges(LIMIT_KEY, by_user(), limits))
    except store.Throttled as exc:
        return store.too_many(int(exc.retry_after or 1))
    return None


def _pdf(template: str, filename: str, **context) -> Response:
    """The PDF of a report template, as a download nobody caches."""
    from qalitel.reports.pdf import render_pdf  # loads WeasyPrint at the first report

    html = render_template(template, **context)
    response = Response(render_pdf(html), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = NO_STORE
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/records/<int:record_id>/pdf")
@login_required
def record_pdf(record_id: int):
    record = record_or_404(record_id)
    if (refused := _spent()) is not None:
        return refused
    return _pdf("reports/pdf/record.html", f"{record.reference}.pdf", report=_report(record))


@bp.get("/records/<int:record_id>/8d.pdf")
@login_required
def record_8d(record_id: int):
    record = record_or_404(record_id)
    if (refused := _spent()) is not None:
        return refused
    report = _report(record)
    return _pdf("reports/pdf/eight_d.html", f"{record.reference}-8D.pdf", report=report,
                sections=content.eight_d(record, report))


# ------------------------------------------------------------------ branding (client admins)


def _branding_page(status: int = 200, error: str | None = None):
    current = branding.current()
    return render_template("reports/branding.html", branding=current, form=LogoForm(),
                           confirm_form=ConfirmForm(), error=error,
                           max_size=human_size(branding.LOGO_MAX_BYTES),
                           max_side=branding.LOGO_MAX_SIDE), status


@bp.get("/admin/branding")
@admin_required
def branding_page():
    return _branding_page()


@bp.post("/admin/branding")
@admin_required
def branding_upload():
    form = LogoForm()
    if not form.validate_on_submit():
        return _branding_page(400, _("The form has expired or is incomplete: try again."))
    upload = form.logo.data
    if not isinstance(upload, FileStorage) or not upload.filename:
        return _branding_page(400, _("Choose a PNG or JPEG image."))
    try:
        branding.set_logo(me(), upload.stream.read(branding.LOGO_MAX_BYTES + 1))
    except branding.LogoRefused as exc:
        return _branding_page(400, str(exc))
    flash(_("Logo saved: it appears on the PDF reports."), "success")
    return redirect(url_for("tenant.reports.branding_page"), 303)


@bp.post("/admin/branding/remove")
@admin_required
def branding_remove():
    if not ConfirmForm().validate_on_submit():
        return _branding_page(400, _("The form has expired or is incomplete: try again."))
    if branding.remove_logo(me()):
        flash(_("Logo removed."), "success")
    return redirect(url_for("tenant.reports.branding_page"), 303)


@bp.get("/admin/branding/logo")
@admin_required
def branding_logo():
    current = branding.current()
    if current is None:
        abort(404)
    response = Response(current.logo, mimetype=branding.content_type(current))
    response.headers["Cache-Control"] = NO_STORE
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
