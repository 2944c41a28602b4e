"""Folder administration (managers and admins): create, rename, mark confidential, and grant
or revoke clearance for confidential folders to managers or groups."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, select

from qalitel.records import service, visibility
from qalitel.records.forms import ClearanceForm, ConfirmForm, FolderForm, options
from qalitel.records.models import Folder, FolderClearance, NonConformity
from qalitel.records.web import bp, form_errors, id_or_404, me, render
from qalitel.users.models import Group, Profile, User
from tenants.context import tdb


def _require_folder_admin() -> None:
    if not visibility.can_manage_folders(me()):
        abort(403)


def _folder_or_404(folder_id: int) -> Folder:
    folder = tdb.execute(select(Folder).where(
        Folder.id == id_or_404(folder_id), visibility.folder_visibility(me())
    )).scalar_one_or_none()
    if folder is None:
        abort(404)
    return folder


def _index(form: FolderForm, status: int = 200):
    counts = dict(tdb.execute(select(NonConformity.folder_id, func.count())
                              .where(NonConformity.folder_id.is_not(None),
                                     visibility.record_visibility(me()))
                              .group_by(NonConformity.folder_id)).all())
    folders = service.usable_folders(me())
    return render("records/folders.html", status, folders=folders, counts=counts, form=form)


@bp.route("/folders/", methods=["GET", "POST"])
@login_required
def folders():
    _require_folder_admin()
    form = FolderForm()
    if form.validate_on_submit():
        try:
            folder = service.create_folder(me(), form.name.data or "",
                                           bool(form.confidential.data))
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Folder %(name)s created.", name=folder.name), "success")
            return redirect(url_for("tenant.records.folder_edit", folder_id=folder.id), 303)
    return _index(form, 400 if form.is_submitted() else 200)


def _clearance_form() -> ClearanceForm:
    form = ClearanceForm()
    managers = tdb.execute(select(User).where(
        User.suspended_at.is_(None), User.profile == Profile.MANAGER)
        .order_by(func.lower(User.name))).scalars()
    form.user.choices = options([(0, "—")] + [(u.id, u.name) for u in managers])
    groups = tdb.execute(select(Group).order_by(func.lower(Group.name))).scalars()
    form.group.choices = options([(0, "—")] + [(g.id, g.name) for g in groups])
    return form


def _edit_page(folder: Folder, status: int = 200, form: FolderForm | None = None,
               clearance_form: ClearanceForm | None = None):
    if form is None:
        form = FolderForm(obj=folder)
    clearances = tdb.execute(
        select(FolderClearance, User.name, Group.name)
        .outerjoin(User, FolderClearance.user_id == User.id)
        .outerjoin(Group, FolderClearance.group_id == Group.id)
        .where(FolderClearance.folder_id == folder.id)
        .order_by(FolderClearance.granted_at)).all()
    return render("records/folder_edit.html", status, folder=folder, form=form,
                  clearances=clearances, clearance_form=clearance_form or _clearance_form(),
                  confirm_form=ConfirmForm())


@bp.route("/folders/<int:folder_id>", methods=["GET", "POST"])
@login_required
def folder_edit(folder_id: int):
    _require_folder_admin()
    folder = _folder_or_404(folder_id)
    form = FolderForm()
    if not form.is_submitted():
        return _edit_page(folder)
    if form.validate_on_submit():
        try:
            service.update_folder(me(), folder, form.name.data or "", bool(form.confidential.data))
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("tenant.records.folder_edit", folder_id=folder.id), 303)
    return _edit_page(folder, 400, form=form)


@bp.post("/folders/<int:folder_id>/clearances")
@login_required
def folder_grant(folder_id: int):
    _require_folder_admin()
    folder = _folder_or_404(folder_id)
    form = _clearance_form()
    if not form.validate_on_submit():
        for message in form_errors(form):
            flash(message, "error")
        return _edit_page(folder, 400, clearance_form=form)
    try:
        added = service.grant_clearance(me(), folder, user_id=form.user.data or None,
                                        group_id=form.group.data or None)
    except service.RecordError as exc:
        flash(str(exc), "error")
        return _edit_page(folder, 400, clearance_form=form)
    flash(_("Clearance granted.") if added else _("Already cleared."), "success")
    return redirect(url_for("tenant.records.folder_edit", folder_id=folder.id), 303)


@bp.post("/folders/<int:folder_id>/clearances/<int:clearance_id>/revoke")
@login_required
def folder_revoke(folder_id: int, clearance_id: int):
    _require_folder_admin()
    folder = _folder_or_404(folder_id)
    if not service.revoke_clearance(me(), folder, id_or_404(clearance_id)):
        abort(404)
    flash(_("Clearance revoked."), "success")
    return redirect(url_for("tenant.records.folder_edit", folder_id=folder.id), 303)
