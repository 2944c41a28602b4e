"""The client admins' notification page (``/admin/notifications``: the tenant's settings and
the record of every mail, failures first to the eye) and each user's section of the
preferences page (its own form, posted to ``/preferences/notifications``)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, select

from core import validation
from core.pagination import DEFAULT_PAGE_SIZE, paginate
from core.web import admin_required
from qalitel.notifications import settings, timing
from qalitel.notifications.forms import TenantSettingsForm, UserPreferenceForm
from qalitel.notifications.models import Kind, Notification, Status
from qalitel.users.models import User
from tenants.context import tdb

bp = Blueprint("notifications", __name__)

KIND_NAMES = {
    Kind.ASSIGNMENT: _l("Assignment"),
    Kind.DUE_SOON: _l("Due soon"),
    Kind.OVERDUE: _l("Overdue"),
    Kind.DIGEST: _l("Weekly digest"),
}
STATUS_NAMES = {
    Status.PENDING: _l("Waiting"),
    Status.SENT: _l("Sent"),
    Status.FAILED: _l("Failed"),
    Status.SKIPPED: _l("Not sent"),
}
REASONS = {
    "no_recipient": _l("the recipient no longer exists"),
    "erased": _l("the recipient's account was erased"),
    "suspended": _l("the recipient is suspended"),
    "turned_off": _l("turned off by the company or the recipient"),
    "gone": _l("the action or record was deleted"),
    "not_visible": _l("the recipient may no longer see it"),
    "reassigned": _l("it was assigned to someone else meanwhile"),
    "finished": _l("the action was finished meanwhile"),
    "changed": _l("its due date changed meanwhile"),
    "empty": _l("nothing to report"),
}


def _me() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _values(form, fields: tuple[str, ...]) -> dict:
    return {name: getattr(form, name).data for name in fields}


def preference_form() -> UserPreferenceForm:
    """The signed-in user's form, filled from what is stored (the defaults otherwise)."""
    return UserPreferenceForm(obj=timing.user_preference(_me().id))


def _admin_page(form: TenantSettingsForm, status: int = 200):
    number = validation.id_or_none(request.args.get("page", "1")) or 1
    rows = (select(Notification, User.name).outerjoin(User, User.id == Notification.user_id)
            .order_by(Notification.id.desc()))
    page = paginate(tdb, rows, select(func.count()).select_from(Notification), number,
                    DEFAULT_PAGE_SIZE)
    failed = tdb.execute(select(func.count()).select_from(Notification).where(
        Notification.status == Status.FAILED)).scalar() or 0
    return render_template("notifications/admin.html", form=form, page=page, failed=failed,
                           kind_names=KIND_NAMES, status_names=STATUS_NAMES,
                           reasons=REASONS), status


@bp.get("/admin/notifications/")
@admin_required
def admin_page():
    return _admin_page(TenantSettingsForm(obj=timing.tenant_settings()))


@bp.post("/admin/notifications/settings")
@admin_required
def save_settings():
    form = TenantSettingsForm(obj=timing.tenant_settings())
    if not form.validate():
        return _admin_page(form, 400)
    if settings.save_tenant_settings(_me(), _values(form, settings.TENANT_FIELDS)):
        flash(_l("Notification settings saved."), "info")
    return redirect(url_for("tenant.notifications.admin_page"))


@bp.post("/preferences/notifications")
@login_required
def save_preference():
    form = UserPreferenceForm(obj=timing.user_preference(_me().id))
    if not form.validate():
        return render_template("notifications/preferences.html", nform=form), 400
    if settings.save_user_preference(_me(), _values(form, settings.USER_FIELDS)):
        flash(_l("Notification preferences saved."), "info")
    return redirect(url_for("tenant.prefs.preferences") + "#notifications")


@bp.app_template_global("notification_prefs_form")
def notification_prefs_form() -> UserPreferenceForm:
    return preference_form()


@bp.app_template_global("tenant_due_soon_days")
def tenant_due_soon_days() -> int:
    return timing.tenant_settings().due_soon_days
