"""Non-conformity pages: dashboard, list, CSV export, detail, create/edit, workflow, shares.

Views stay thin: reads go through :mod:`qalitel.records.queries` (visibility included),
writes through :mod:`qalitel.records.service`. Actions and folders have their own modules
on the same blueprint.
"""

from __future__ import annotations

from types import SimpleNamespace

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core.pagination import PAGE_SIZES
from qalitel.records import (
    action_views,
    conflicts,
    folder_views,
    queries,
    service,
    visibility,
    workflow_views,
)
from qalitel.records.chart import layout_chart
from qalitel.records.export import EXPORT_MAX, csv_response, number_cell
from qalitel.records.field_models import ITEM_KINDS, PARTY_KINDS
from qalitel.records.fields import indicators
from qalitel.records.fields import views as field_views
from qalitel.records.fields.catalog import entry_options
from qalitel.records.files import views as file_views
from qalitel.records.forms import (
    FIELD_LABELS,
    STATUS_LABELS,
    ConfirmForm,
    RecordForm,
    ReopenForm,
    ShareForm,
    StatusForm,
    options,
)
from qalitel.records.models import (
    STATUSES,
    NonConformity,
    RecordHistory,
    RecordShare,
    StatusChange,
)
from qalitel.records.rules import workflow_rules
from qalitel.records.specs import ListSpec
from qalitel.records.web import (
    bp,
    folder_label,
    folder_options,
    id_or_404,
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

__all__ = ["action_views", "bp", "dashboard", "field_views", "file_views", "folder_views",
           "workflow_views"]


def dashboard():
    """The tenant's home page: counts by status, overdue actions, records per month."""
    user = me()
    counts = queries.status_counts(user)
    chart = layout_chart(queries.records_per_month(user, today()))
    latest = tdb.execute(queries.record_rows(
        user, ListSpec(name="records", sort="-number"), today()).limit(5)).all()
    return render("records/dashboard.html", counts=counts, statuses=STATUSES,
                  total=sum(counts.values()), chart=chart, latest=latest,
                  overdue=queries.overdue_action_count(user, today()),
                  my_overdue=queries.overdue_action_count(user, today(), mine=True),
                  my_open=queries.open_action_count(user),
                  **indicators.dashboard(user, today()))


# ------------------------------------------------------------------ list and export


@bp.get("/records/")
@login_required
def index():
    spec = list_spec("records")
    page = queries.record_page(me(), spec, today())
    remember_page()
    users, folders = service.list_choices(me())
    labels = translated_labels()
    choices = {
        "status": [("active", _("In progress")), *labels["status"].items()],
        "severity": list(labels["severity"].items()),
        "origin": list(labels["origin"].items()),
        "folder": [("none", _("(no folder)"))]
        + [(str(f.id), folder_label(f)) for f in folders],
        "assignee": [("me", _("Me")), ("none", _("(nobody)"))]
        + [(str(u.id), u.name) for u in users],
    }
    return render("records/list.html", spec=spec, page=page, choices=choices,
                  page_sizes=PAGE_SIZES)


@bp.get("/records/export.csv")
@login_required
def export():
    spec = list_spec("records")
    rows = tdb.execute(queries.record_rows(me(), spec, today()).limit(EXPORT_MAX)).all()
    labels = translated_labels()
    header = [_("Number"), _("Title"), _("Status"), _("Severity"), _("Origin"),
              _("Detection date"), _("Detected by"), _("Folder"), _("Assignee"),
              _("Overdue actions"), _("Description"),
              *(str(FIELD_LABELS[name]) for name in FIELD_HEADERS)]
    return csv_response(f"nonconformities-{today().isoformat()}.csv", header, (
        (f"NC-{r.number}", r.title, labels["status"].get(r.status, r.status),
         labels["severity"].get(r.severity, r.severity), labels["origin"].get(r.origin, r.origin),
         r.detected_on, r.detected_by_name, _folder_cell(r), r.assignee_name, bool(r.overdue),
         r.description, *_field_cells(r))
        for r in rows))


# The record fields' columns (qalitel.records.fields), after the others.
FIELD_HEADERS = ("product", "lot", "quantity", "quantity_unit", "partner", "immediate_action",
                 "nq_cost")


def _field_cells(row) -> tuple:
    return (row.product_name, row.lot, number_cell(row.quantity), row.quantity_unit,
            row.partner_name, row.immediate_action, number_cell(row.nq_cost, 2))


def _folder_cell(row) -> str:
    if row.folder_name is None and row.confidential:
        return visibility.hidden_folder_label()
    return row.folder_name or ""


# ------------------------------------------------------------------ create and edit


def _prepare(form: RecordForm, record: NonConformity | None = None) -> None:
    """Choices: what may be picked, plus the values the record holds now."""
    form.detected_by_id.choices = user_options(keep=record.detected_by_id if record else None)
    form.assignee_id.choices = user_options(_("(nobody)"),
                                            keep=record.assignee_id if record else None)
    form.folder_id.choices = folder_options(me(), record.folder_id if record else None)
    form.product_id.choices = entry_options(ITEM_KINDS, record.product_id if record else None)
    form.partner_id.choices = entry_options(PARTY_KINDS, record.partner_id if record else None)


def _field_values(form: RecordForm) -> dict:
    """The record fields of the form (qalitel.records.fields), by service name."""
    return {"product": form.product_id.data, "lot": form.lot.data,
            "quantity": form.quantity.data, "quantity_unit": form.quantity_unit.data,
            "partner": form.partner_id.data, "immediate_action": form.immediate_action.data,
            "nq_cost": form.nq_cost.data}


@bp.route("/records/new", methods=["GET", "POST"])
@login_required
def create():
    form = RecordForm(data={"detected_on": today(), "detected_by_id": me().id})
    _prepare(form)
    if form.validate_on_submit():
        try:
            record = service.create_nonconformity(
                me(), form.title.data or "", form.description.data or "",
                detected_on=form.detected_on.data, detected_by_id=form.detected_by_id.data,
                origin=form.origin.data, severity=form.severity.data,
                folder_id=form.folder_id.data, assignee_id=form.assignee_id.data,
                cause_analysis=form.cause_analysis.data or "", fields=_field_values(form))
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Non-conformity %(ref)s recorded.", ref=record.reference), "success")
            return redirect(url_for("tenant.records.show", record_id=record.id), 303)
    status = 400 if form.is_submitted() else 200
    return render("records/form.html", status, form=form, record=None)


@bp.route("/records/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def edit(record_id: int):
    record = record_or_404(record_id)
    if not visibility.can_edit_record(me(), record):
        abort(403)
    service.ensure_writable(record)
    form = RecordForm(obj=record)
    _prepare(form, record)
    if not form.is_submitted():
        form.version.data = service.record_version(record)
    reassign = visibility.may_reassign(me(), record)
    if form.validate_on_submit():
        assignee = {"assignee": form.assignee_id.data} if reassign else {}
        try:
            service.update_nonconformity(
                me(), record, version=form.version.data or "", title=form.title.data,
                description=form.description.data, cause_analysis=form.cause_analysis.data,
                detected_on=form.detected_on.data, detected_by=form.detected_by_id.data,
                origin=form.origin.data, severity=form.severity.data,
                folder=form.folder_id.data, **assignee, **_field_values(form))
        except service.EditConflict as exc:
            return _edit_conflict(record, exc)
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("tenant.records.show", record_id=record.id), 303)
    status = 400 if form.is_submitted() else 200
    return render("records/form.html", status, form=form, record=record,
                  fixed_assignee=not reassign)


RECORD_ATTRIBUTES = {"detected_by": "detected_by_id", "folder": "folder_id",
                     "assignee": "assignee_id", "product": "product_id",
                     "partner": "partner_id"}


def _edit_conflict(record: NonConformity, conflict: service.EditConflict):
    """409: the form of the current version, with the person's other changes kept."""
    form = RecordForm(formdata=None, data=conflicts.merged_data(
        service.current_values(record), conflict, RECORD_ATTRIBUTES))
    _prepare(form, record)
    form.version.data = service.record_version(record)
    yours = conflicts.announce(form, conflict, RECORD_ATTRIBUTES)
    return render("records/form.html", 409, form=form, record=record, conflict=yours,
                  fixed_assignee=not visibility.may_reassign(me(), record))


# ------------------------------------------------------------------ detail


def _history(user, record_id: int) -> list[SimpleNamespace]:
    """The record's history, newest first, as ``user`` may read it (folder names masked)."""
    rows = tdb.execute(select(RecordHistory).options(joinedload(RecordHistory.user))
                       .where(RecordHistory.record_id == record_id)
                       .order_by(RecordHistory.changed_at.desc(), RecordHistory.id.desc())
                       ).scalars()
    seen: dict[int | None, bool] = {}
    return [SimpleNamespace(
        changed_at=h.changed_at, user=h.user, field=h.field,
        old_value=visibility.history_value(user, h.field, h.old_value, h.old_ref, seen),
        new_value=visibility.history_value(user, h.field, h.new_value, h.new_ref, seen))
        for h in rows]


def _show(record: NonConformity, status: int = 200, *, status_form: StatusForm | None = None,
          share_form: ShareForm | None = None, reopen_form: ReopenForm | None = None):
    user = me()
    shares = list(tdb.execute(select(RecordShare).options(joinedload(RecordShare.user))
                              .where(RecordShare.record_id == record.id)
                              .order_by(RecordShare.shared_at)).scalars())
    steps = list(tdb.execute(select(StatusChange).options(joinedload(StatusChange.changed_by))
                             .where(StatusChange.record_id == record.id)
                             .order_by(StatusChange.changed_at, StatusChange.id)).scalars())
    history = _history(user, record.id)
    can_edit = visibility.can_edit_record(user, record) and not service.is_locked(record)
    rules = workflow_rules()
    moves = visibility.allowed_moves(user, record, rules)
    if not moves:
        status_form = None
    elif status_form is None:
        status_form = StatusForm()
    if status_form is not None:
        status_form.to_status.choices = options((s, STATUS_LABELS[s]) for s in moves)
    if not visibility.can_reopen(user, record, rules):
        reopen_form = None
    elif reopen_form is None:
        reopen_form = ReopenForm()
    if not can_edit:
        share_form = None
    elif share_form is None:
        share_form = ShareForm()
    if share_form is not None:
        share_form.user.choices = user_options(exclude={s.user_id for s in shares})
    remember_page()
    outcome = next((s for s in reversed(steps) if s.to_status == record.status), None)
    return render("records/show.html", status, record=record, shares=shares, steps=steps,
                  history=history, actions=queries.record_actions(user, record.id, today()),
                  can_edit=can_edit, status_form=status_form, reopen_form=reopen_form,
                  outcome=outcome if record.is_final else None,
                  closure_gaps=service.closure_gaps(record) if "closed" in moves else [],
                  folder_visible=visibility.can_see_folder(user, record.folder_id),
                  share_form=share_form, confirm_form=ConfirmForm(),
                  **file_views.files_context(record), **field_views.show_context(record))


@bp.get("/records/<int:record_id>")
@login_required
def show(record_id: int):
    return _show(record_or_404(record_id, shown=True))


@bp.post("/records/<int:record_id>/status")
@login_required
def change_status(record_id: int):
    record = record_or_404(record_id)
    service.ensure_writable(record)
    if not visibility.workflow_roles(me(), record):  # the rules say who may make each move
        raise service.PermissionDenied(_("You may not change the status of this record."))
    form = StatusForm()
    form.to_status.choices = options((s, s) for s in STATUSES)
    if not form.validate_on_submit():
        return _show(record, 400, status_form=form)
    try:
        service.change_status(me(), record, form.to_status.data, form.comment.data or "",
                              form.justification.data or "")
    except service.RecordError as exc:
        flash(str(exc), "error")
        return _show(record, 400, status_form=form)
    flash(_("Status changed."), "success")
    return redirect(url_for("tenant.records.show", record_id=record.id), 303)


@bp.post("/records/<int:record_id>/reopen")
@login_required
def reopen(record_id: int):
    record = record_or_404(record_id)
    if not record.is_final:
        flash(_("Only a closed or unfounded record can be reopened."), "error")
        return _show(record, 409)
    if not visibility.can_reopen(me(), record):
        raise service.PermissionDenied(service.refusal("reopen", workflow_rules()["reopen"]))
    form = ReopenForm()
    if not form.validate_on_submit():
        return _show(record, 400, reopen_form=form)
    try:
        service.reopen(me(), record, form.reason.data or "")
    except service.RecordError as exc:
        flash(str(exc), "error")
        return _show(record, 400, reopen_form=form)
    flash(_("Record reopened."), "success")
    return redirect(url_for("tenant.records.show", record_id=record.id), 303)


@bp.post("/records/<int:record_id>/shares")
@login_required
def share(record_id: int):
    record = record_or_404(record_id)
    if not visibility.can_edit_record(me(), record):
        abort(403)
    service.ensure_writable(record)
    form = ShareForm()
    form.user.choices = user_options()
    if not form.validate_on_submit():
        return _show(record, 400, share_form=form)
    try:
        service.share_record(me(), record, form.user.data)
    except service.RecordError as exc:
        flash(str(exc), "error")
        return _show(record, 400, share_form=form)
    flash(_("Shared."), "success")
    return redirect(url_for("tenant.records.show", record_id=record.id), 303)


@bp.post("/records/<int:record_id>/shares/<int:user_id>/remove")
@login_required
def unshare(record_id: int, user_id: int):
    record = record_or_404(record_id)
    if not visibility.can_edit_record(me(), record):
        abort(403)
    service.ensure_writable(record)
    if service.unshare_record(me(), record, id_or_404(user_id)):
        flash(_("No longer shared with this person."), "success")
    return redirect(url_for("tenant.records.show", record_id=record.id), 303)
