"""Action pages: list (filters, overdue), CSV export, create (on a record or standalone),
detail, edit, effectiveness check."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from core.pagination import PAGE_SIZES
from qalitel.records import conflicts, queries, service, visibility
from qalitel.records.export import EXPORT_MAX, csv_response
from qalitel.records.files.models import ActionHistory
from qalitel.records.files.views import files_context
from qalitel.records.forms import ActionForm, EffectivenessForm
from qalitel.records.models import Action, NonConformity
from qalitel.records.web import (
    action_or_404,
    bp,
    list_spec,
    me,
    record_or_404,
    remember_page,
    render,
    today,
    translated_labels,
    user_options,
)
from tenants.context import tdb


@bp.get("/actions/")
@login_required
def actions():
    spec = list_spec("actions")
    page = queries.action_page(me(), spec, today())
    remember_page()
    labels = translated_labels()
    choices = {
        "status": [("active", _("Not finished")), *labels["action_status"].items()],
        "kind": list(labels["kind"].items()),
        "owner": [("me", _("Me")), ("none", _("(nobody)"))]
        + [(str(u.id), u.name) for u in service.assignable_users()],
    }
    return render("records/actions.html", spec=spec, page=page, choices=choices,
                  page_sizes=PAGE_SIZES)


@bp.get("/actions/export.csv")
@login_required
def actions_export():
    spec = list_spec("actions")
    rows = tdb.execute(queries.action_rows(me(), spec, today()).limit(EXPORT_MAX)).all()
    labels = translated_labels()
    header = [_("Id"), _("Title"), _("Type"), _("Status"), _("Due date"), _("Owner"),
              _("Non-conformity"), _("Overdue"), _("Effective"),
              _("Effectiveness check planned on"), _("Effectiveness"), _("Check overdue")]
    checks = translated_labels()["check"]
    return csv_response(f"actions-{today().isoformat()}.csv", header, (
        (r.id, r.title, labels["kind"].get(r.kind, r.kind),
         labels["action_status"].get(r.status, r.status), r.due_date, r.owner_name,
         f"NC-{r.record_number}" if r.record_number else "", bool(r.overdue),
         "" if r.effective is None else bool(r.effective), r.effectiveness_due_on,
         checks.get(queries.check_result(r) or "", ""), bool(r.check_overdue))
        for r in rows))


def _save_new(form: ActionForm, record: NonConformity | None):
    form.owner_id.choices = user_options()
    if form.validate_on_submit():
        try:
            action = service.create_action(
                me(), form.title.data or "", record=record, kind=form.kind.data,
                description=form.description.data or "", owner_id=form.owner_id.data,
                due_date=form.due_date.data, status=form.status.data,
                effectiveness_due_on=form.effectiveness_due_on.data,
                effectiveness_criteria=form.effectiveness_criteria.data or "")
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Action saved."), "success")
            if action.is_overdue:
                flash(_("Its due date is already past: the action is overdue from the start."),
                      "warning")
            return redirect(url_for("tenant.records.action_show", action_id=action.id), 303)
    status = 400 if form.is_submitted() else 200
    return render("records/action_form.html", status, form=form, record=record, action=None)


@bp.route("/actions/new", methods=["GET", "POST"])
@login_required
def action_create():
    return _save_new(ActionForm(data={"owner_id": me().id}), None)


@bp.route("/records/<int:record_id>/actions/new", methods=["GET", "POST"])
@login_required
def record_action_create(record_id: int):
    record = record_or_404(record_id)
    if not visibility.can_edit_record(me(), record):
        abort(403)
    service.ensure_writable(record)
    return _save_new(ActionForm(data={"owner_id": me().id}), record)


def _show(action: Action, status: int = 200, form: EffectivenessForm | None = None):
    user = me()
    locked = service.is_locked(action)
    can_check = (visibility.can_check_effectiveness(user) and action.status == "done"
                 and not locked)
    record = None
    if action.record_id is not None:
        record = queries.visible_record(user, action.record_id)
    history = tdb.execute(select(ActionHistory).where(ActionHistory.action_id == action.id)
                          .order_by(ActionHistory.changed_at.desc(), ActionHistory.id.desc())
                          ).scalars().all()
    remember_page()
    return render("records/action_show.html", status, action=action, record=record,
                  can_edit=visibility.can_edit_action(user, action) and not locked,
                  can_check=can_check, locked=locked,
                  form=form or (EffectivenessForm() if can_check else None),
                  history=history, **files_context(action))


@bp.get("/actions/<int:action_id>")
@login_required
def action_show(action_id: int):
    return _show(action_or_404(action_id))


@bp.route("/actions/<int:action_id>/edit", methods=["GET", "POST"])
@login_required
def action_edit(action_id: int):
    action = action_or_404(action_id)
    if not visibility.can_edit_action(me(), action):
        abort(403)
    service.ensure_writable(action)
    form = ActionForm(obj=action)
    form.owner_id.choices = user_options(keep=action.owner_id)
    if not form.is_submitted():
        form.version.data = service.action_version(action)
    if form.validate_on_submit():
        try:
            service.update_action(me(), action, version=form.version.data or "",
                                  title=form.title.data, description=form.description.data,
                                  kind=form.kind.data, status=form.status.data,
                                  due_date=form.due_date.data, owner=form.owner_id.data,
                                  effectiveness_due_on=form.effectiveness_due_on.data,
                                  effectiveness_criteria=form.effectiveness_criteria.data)
        except service.EditConflict as exc:
            return _edit_conflict(action, exc)
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            if queries.visible_action(me(), action.id) is None:
                flash(_("Changes saved. This action is no longer one you can see."), "success")
                return redirect(url_for("tenant.records.actions"), 303)
            flash(_("Changes saved."), "success")
            return redirect(url_for("tenant.records.action_show", action_id=action.id), 303)
    status = 400 if form.is_submitted() else 200
    record = (queries.visible_record(me(), action.record_id)
              if action.record_id is not None else None)
    return render("records/action_form.html", status, form=form, record=record, action=action)


ACTION_ATTRIBUTES = {"owner": "owner_id"}


def _edit_conflict(action: Action, conflict: service.EditConflict):
    """409: the form of the current version, with the person's other changes kept."""
    form = ActionForm(formdata=None, data=conflicts.merged_data(
        service.action_values(action), conflict, ACTION_ATTRIBUTES))
    form.owner_id.choices = user_options(keep=action.owner_id)
    form.version.data = service.action_version(action)
    yours = conflicts.announce(form, conflict, ACTION_ATTRIBUTES)
    record = (queries.visible_record(me(), action.record_id)
              if action.record_id is not None else None)
    return render("records/action_form.html", 409, form=form, record=record, action=action,
                  conflict=yours)


@bp.post("/actions/<int:action_id>/effectiveness")
@login_required
def action_effectiveness(action_id: int):
    action = action_or_404(action_id)
    if not visibility.can_check_effectiveness(me()):
        abort(403)
    service.ensure_writable(action)
    form = EffectivenessForm()
    if not form.validate_on_submit():
        return _show(action, 400, form)
    try:
        service.check_effectiveness(me(), action, form.effective.data == "yes",
                                    form.comment.data or "")
    except service.RecordError as exc:
        flash(str(exc), "error")
        return _show(action, 400, form)
    flash(_("Effectiveness check recorded."), "success")
    return redirect(url_for("tenant.records.action_show", action_id=action.id), 303)
