"""Non-conformity pages: dashboard, list, CSV export, detail, create/edit, workflow, shares.

Views stay thin: reads go through :mod:`qalitel.records.queries` (visibility included),
writes through :mod:`qalitel.records.service`. Actions and folders have their own modules
on the same blueprint.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from qalitel.records import action_views, folder_views, queries, service, visibility
from qalitel.records.forms import (
    STATUS_LABELS,
    ConfirmForm,
    RecordForm,
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
from qalitel.records.web import (
    bp,
    csv_response,
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

__all__ = ["action_views", "bp", "dashboard", "folder_views"]


def dashboard():
    """The tenant's home page: counts by status, overdue actions, records per month."""
    user = me()
    counts = queries.status_counts(user)
    chart = queries.layout_chart(queries.records_per_month(user, today()))
    latest = tdb.execute(queries.record_rows(
        user, queries.ListSpec(name="records", sort="-number"), today()).limit(5)).all()
    return render("records/dashboard.html", counts=counts, statuses=STATUSES,
                  total=sum(counts.values()), chart=chart, latest=latest,
                  overdue=queries.overdue_action_count(user, today()),
                  my_overdue=queries.overdue_action_count(user, today(), mine=True),
                  my_open=queries.open_action_count(user))


# ------------------------------------------------------------------ list and export


@bp.get("/records/")
@login_required
def index():
    spec = list_spec("records")
    page = queries.record_page(me(), spec, today())
    remember_page()
    users = service.assignable_users()
    labels = translated_labels()
    choices = {
        "status": [("active", _("Not closed")), *labels["status"].items()],
        "severity": list(labels["severity"].items()),
        "origin": list(labels["origin"].items()),
        "folder": [("none", _("(no folder)"))]
        + [(str(f.id), f.name) for f in service.folder_choices(me())],
        "assignee": [("me", _("Me")), ("none", _("(nobody)"))]
        + [(str(u.id), u.name) for u in users],
    }
    return render("records/list.html", spec=spec, page=page, choices=choices,
                  page_sizes=queries.PAGE_SIZES)


@bp.get("/records/export.csv")
@login_required
def export():
    spec = list_spec("records")
    rows = tdb.execute(queries.record_rows(me(), spec, today())
                       .limit(queries.EXPORT_MAX)).all()
    header = [_("Number"), _("Title"), _("Status"), _("Severity"), _("Origin"),
              _("Detection date"), _("Detected by"), _("Folder"), _("Assignee"),
              _("Overdue actions"), _("Description")]
    return csv_response(f"nonconformities-{today().isoformat()}.csv", header, (
        (f"NC-{r.number}", r.title, r.status, r.severity, r.origin, r.detected_on,
         r.detected_by_name, r.folder_name, r.assignee_name, bool(r.overdue), r.description)
        for r in rows))


# ------------------------------------------------------------------ create and edit


def _prepare(form: RecordForm, record: NonConformity | None = None) -> None:
    form.detected_by.choices = user_options()
    form.assignee.choices = user_options(_("(nobody)"))
    form.folder.choices = folder_options(me(), record.folder if record else None)


@bp.route("/records/new", methods=["GET", "POST"])
@login_required
def create():
    form = RecordForm()
    _prepare(form)
    if not form.is_submitted():
        form.detected_on.data = today()
        form.detected_by.data = me().id
    if form.validate_on_submit():
        try:
            record = service.create_nonconformity(
                me(), form.title.data or "", form.description.data or "",
                detected_on=form.detected_on.data, detected_by_id=form.detected_by.data,
                origin=form.origin.data, severity=form.severity.data,
                folder_id=form.folder.data or None, assignee_id=form.assignee.data or None,
                cause_analysis=form.cause_analysis.data or "")
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
    form = RecordForm()
    _prepare(form, record)
    if not form.is_submitted():
        form.process(obj=record, detected_by=record.detected_by_id or 0,
                     assignee=record.assignee_id or 0, folder=record.folder_id or 0)
    if form.validate_on_submit():
        try:
            service.update_nonconformity(
                me(), record, title=form.title.data, description=form.description.data,
                cause_analysis=form.cause_analysis.data, detected_on=form.detected_on.data,
                detected_by=form.detected_by.data or None, origin=form.origin.data,
                severity=form.severity.data, folder=form.folder.data or None,
                assignee=form.assignee.data or None)
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("tenant.records.show", record_id=record.id), 303)
    status = 400 if form.is_submitted() else 200
    return render("records/form.html", status, form=form, record=record)


# ------------------------------------------------------------------ detail


def _show(record: NonConformity, status: int = 200, *, status_form: StatusForm | None = None,
          share_form: ShareForm | None = None):
    user = me()
    shares = list(tdb.execute(select(RecordShare).where(RecordShare.record_id == record.id)
                              .order_by(RecordShare.shared_at)).scalars())
    steps = list(tdb.execute(select(StatusChange).where(StatusChange.record_id == record.id)
                             .order_by(StatusChange.changed_at, StatusChange.id)).scalars())
    history = list(tdb.execute(select(RecordHistory).where(RecordHistory.record_id == record.id)
                               .order_by(RecordHistory.changed_at.desc(),
                                         RecordHistory.id.desc())).scalars())
    can_edit = visibility.can_edit_record(user, record)
    can_move = visibility.can_change_status(user, record) and bool(record.next_statuses)
    if not can_move:
        status_form = None
    elif status_form is None:
        status_form = StatusForm()
    if status_form is not None:
        status_form.to_status.choices = options(
            (s, STATUS_LABELS[s]) for s in record.next_statuses)
    if not can_edit:
        share_form = None
    elif share_form is None:
        share_form = ShareForm()
    if share_form is not None:
        share_form.user.choices = user_options(exclude={s.user_id for s in shares})
    remember_page()
    return render("records/show.html", status, record=record, shares=shares, steps=steps,
                  history=history, actions=queries.record_actions(user, record.id, today()),
                  can_edit=can_edit, can_move=can_move, status_form=status_form,
                  share_form=share_form, confirm_form=ConfirmForm())


@bp.get("/records/<int:record_id>")
@login_required
def show(record_id: int):
    return _show(record_or_404(record_id))


@bp.post("/records/<int:record_id>/status")
@login_required
def change_status(record_id: int):
    record = record_or_404(record_id)
    if not visibility.can_change_status(me(), record):
        abort(403)
    form = StatusForm()
    form.to_status.choices = options((s, s) for s in STATUSES)
    if not form.validate_on_submit():
        return _show(record, 400, status_form=form)
    try:
        service.change_status(me(), record, form.to_status.data, form.comment.data or "")
    except service.RecordError as exc:
        flash(str(exc), "error")
        return _show(record, 400, status_form=form)
    flash(_("Status changed."), "success")
    return redirect(url_for("tenant.records.show", record_id=record.id), 303)


@bp.post("/records/<int:record_id>/shares")
@login_required
def share(record_id: int):
    record = record_or_404(record_id)
    if not visibility.can_edit_record(me(), record):
        abort(403)
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
    if service.unshare_record(me(), record, id_or_404(user_id)):
        flash(_("No longer shared with this person."), "success")
    return redirect(url_for("tenant.records.show", record_id=record.id), 303)
