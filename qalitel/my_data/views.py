"""The "My data" page of every signed-in user (``/t/<slug>/my-data``): what is held, the
download, rectification of their own profile fields, and the erasure request; and the admin
page deciding erasure requests (``/t/<slug>/erasure-requests/``)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from core import clock, config, validation
from core.forms import Checked, SafeForm
from core.web import admin_required
from qalitel import prefs
from qalitel.exports.jobs import ExportBusyError, aware
from qalitel.exports.models import ExportState
from qalitel.exports.views import send_export, state_labels
from qalitel.i18n import LANGUAGE_NAMES
from qalitel.my_data import export_request as exports
from qalitel.my_data import requests as erasures
from qalitel.my_data.collect import personal_data
from qalitel.my_data.models import REASON_MAX
from qalitel.users import service
from qalitel.users.labels import PROFILE_LABELS
from qalitel.users.service import UserError
from tenants.context import current_tenant, tdb

bp = Blueprint("my_data", __name__)
admin = Blueprint("erasures", __name__, url_prefix="/erasure-requests")


SECTION_LABELS = {
    "users": _l("Your profile"), "groups_of_the_user": _l("Your groups"),
    "nonconformities": _l("Non-conformities about you"),
    "records_shared_with_the_user": _l("Non-conformities shared with you"),
    "nonconformity_status_changes": _l("Status changes"),
    "nonconformity_history": _l("Non-conformity history"), "actions": _l("Actions"),
    "action_history": _l("Action history"), "attachments": _l("Attached files"),
    "login_events": _l("Sign-in history"), "folders": _l("Folders"),
    "folder_clearances": _l("Folder clearances"), "nonconformity_shares": _l("Shares"),
    "erasure_requests": _l("Deletion requests"), "user_former_names": _l("Your former names"),
    "maintenance_accesses": _l("Maintenance accesses"), "preferences": _l("Preferences"),
    "workflow_rules": _l("Workflow rules"),
}


class RectifyForm(SafeForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Checked(validation.check_name)])
    locale = SelectField(_l("Language of the messages you receive"),
                         choices=[SelectChoice(code, name)
                                  for code, name in LANGUAGE_NAMES.items()])


class ActionForm(SafeForm):
    """CSRF only: download, ask for erasure, approve."""


class RefuseForm(SafeForm):
    reason = TextAreaField(_l("Reason (sent to the user)"),
                           validators=[Checked(lambda raw: validation.check_text(raw,
                                                                                 REASON_MAX))])


def _summary() -> dict[str, int]:
    data = personal_data(tdb, current_user.id, prefs.current_prefs(), current_tenant().uid)
    return {section: len(rows) for section, rows in data.items() if rows}


def _page(form: RectifyForm, status: int = 200, export_error: str | None = None):
    user = current_user
    mine = exports.personal_exports(user.id)
    busy = any(job.state in (ExportState.PENDING, ExportState.RUNNING) for job in mine)
    return render_template(
        "my_data/page.html", form=form, action=ActionForm(), summary=_summary(),
        exports=mine, busy=busy, next_at=exports.next_request_at(user.id),
        export_error=export_error, labels=state_labels(), utc=aware, now=clock.now(),
        export_days=config.settings().export_days, ExportState=ExportState,
        section_labels=SECTION_LABELS,
        profile_label=PROFILE_LABELS[user.profile],
        groups=service.groups_by_user().get(user.id, []),
        erasure=erasures.latest_for(user)), status


@bp.get("/my-data")
@login_required
def page():
    return _page(RectifyForm(obj=current_user, locale=current_user.locale or "fr"))


@bp.post("/my-data/profile")
@login_required
def rectify():
    user = current_user._get_current_object()
    form = RectifyForm(obj=user)
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        service.rename(user, form.name.data or "")
    except UserError as exc:
        form.name.errors.append(str(exc))
        return _page(form, 400)
    if form.locale.data != user.locale:
        user.locale = form.locale.data
        prefs.set_pref("lang", form.locale.data)
        tdb.flush()
    flash(_("Your data is saved."), "info")
    return redirect(url_for("tenant.my_data.page"))


def _fresh_page(status: int, error: str):
    return _page(RectifyForm(obj=current_user, locale=current_user.locale or "fr"), status,
                 error)


@bp.post("/my-data/download")
@login_required
def download():
    """Queue the export of the signed-in user's data (409 while one is on its way, 429
    within a day of the last request)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        exports.request_personal_export(current_user.id, prefs.current_prefs())
    except ExportBusyError as exc:
        return _fresh_page(409, str(exc))
    except exports.TooSoonError as exc:
        page, status = _fresh_page(429, str(exc))
        wait = max(1, int((exc.next_at - clock.now()).total_seconds()))
        return page, status, {"Retry-After": str(wait)}
    flash(_("Your data is being gathered. You will get an e-mail with a download link when "
            "it is ready; this page shows where it stands."), "info")
    return redirect(url_for("tenant.my_data.page"))


@bp.get("/my-data/exports/<int:export_id>")
@login_required
def export_file(export_id: int):
    """The file of one of the signed-in user's own exports (404 for anyone else's)."""
    job = exports.own_export(export_id, current_user.id)
    if job is None:
        abort(404)
    return send_export(job)


@bp.post("/my-data/exports/<int:export_id>/retry")
@login_required
def retry_export(export_id: int):
    job = exports.own_export(export_id, current_user.id)
    if job is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if job.state is not ExportState.FAILED:
        return _fresh_page(409, _("Only a failed export can be retried."))
    try:
        exports.retry_personal_export(job, prefs.current_prefs())
    except ExportBusyError as exc:
        return _fresh_page(409, str(exc))
    flash(_("The export will be tried again."), "info")
    return redirect(url_for("tenant.my_data.page"))


@bp.post("/my-data/erasure")
@login_required
def ask_erasure():
    """Always for the signed-in user: the form carries no id, and any id sent is ignored."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        erasures.request_erasure(current_user)
    except UserError as exc:
        flash(str(exc), "error")
        return _page(RectifyForm(obj=current_user, locale=current_user.locale or "fr"), 409)
    flash(_("Your request is sent to your administrators. You will be told of their "
            "decision by e-mail."), "info")
    return redirect(url_for("tenant.my_data.page"))


# ---------------------------------------------------------------- admins decide


def _requests_page(status: int = 200):
    return render_template("my_data/requests.html", pending=erasures.pending(),
                           action=ActionForm(), refuse=RefuseForm()), status


@admin.get("/")
@admin_required
def index():
    return _requests_page()


def _decide(request_id: int, approve: bool):
    pending = erasures.get_pending(request_id)
    if pending is None:
        abort(404)
    form = RefuseForm() if not approve else ActionForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return _requests_page(400)
    reason = form.reason.data if isinstance(form, RefuseForm) else ""
    try:
        erasures.decide(pending, current_user._get_current_object(), approve, reason or "")
    except UserError as exc:
        flash(str(exc), "error")
        return _requests_page(409)
    if approve:
        flash(_("The account is deleted; its records now show a pseudonym."), "info")
    else:
        flash(_("The request is refused; the user is told."), "info")
    if not current_user.is_authenticated or current_user.is_suspended:
        return redirect(url_for("tenant.auth.login"))
    return redirect(url_for("tenant.erasures.index"))


@admin.post("/<int:request_id>/approve")
@admin_required
def approve(request_id: int):
    return _decide(request_id, True)


@admin.post("/<int:request_id>/refuse")
@admin_required
def refuse(request_id: int):
    return _decide(request_id, False)
