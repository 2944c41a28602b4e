"""Pages of the record fields: the tenant's lists (managers and admins add, rename and archive
entries) and a record's structured cause analysis (5 Whys, Ishikawa grid)."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required

from qalitel.records import conflicts, service, visibility
from qalitel.records.field_labels import CATALOG_LIST_LABELS
from qalitel.records.field_models import (
    CATALOG_KINDS,
    ISHIKAWA_FIELDS,
    WHY_STEPS,
    CatalogEntry,
)
from qalitel.records.fields import analysis, catalog
from qalitel.records.fields.forms import AnalysisForm, CatalogEntryForm, CatalogRenameForm
from qalitel.records.forms import ConfirmForm
from qalitel.records.models import NonConformity
from qalitel.records.web import bp, id_or_404, me, record_or_404, render
from tenants.context import tdb

# ------------------------------------------------------------------ lists


def _require_manager() -> None:
    if not catalog.can_manage(me()):
        abort(403)


def _entry_or_404(entry_id: int) -> CatalogEntry:
    entry = tdb.get(CatalogEntry, id_or_404(entry_id))
    if entry is None:
        abort(404)
    return entry


def _lists(form: CatalogEntryForm, status: int = 200, rename: CatalogRenameForm | None = None,
           renamed_id: int | None = None):
    by_kind: dict[str, list[CatalogEntry]] = {kind: [] for kind in CATALOG_KINDS}
    for entry in catalog.entries():
        by_kind[entry.kind].append(entry)
    return render("records/lists.html", status, form=form, by_kind=by_kind,
                  list_labels=CATALOG_LIST_LABELS, rename=rename, renamed_id=renamed_id,
                  rename_form=CatalogRenameForm(formdata=None), confirm_form=ConfirmForm())


@bp.route("/lists/", methods=["GET", "POST"])
@login_required
def lists():
    _require_manager()
    form = CatalogEntryForm()
    if form.validate_on_submit():
        try:
            entry = catalog.add_entry(me(), form.kind.data, form.name.data)
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("“%(name)s” added.", name=entry.name), "success")
            return redirect(url_for("tenant.records.lists"), 303)
    return _lists(form, 400 if form.is_submitted() else 200)


@bp.post("/lists/<int:entry_id>")
@login_required
def list_entry_rename(entry_id: int):
    _require_manager()
    entry = _entry_or_404(entry_id)
    form = CatalogRenameForm()
    if form.validate_on_submit():
        try:
            changed = catalog.rename_entry(me(), entry, form.name.data)
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            if changed:
                flash(_("Renamed."), "success")
            return redirect(url_for("tenant.records.lists"), 303)
    return _lists(CatalogEntryForm(formdata=None), 400, rename=form, renamed_id=entry.id)


def _set_archived(entry_id: int, archived: bool):
    _require_manager()
    entry = _entry_or_404(entry_id)
    if not ConfirmForm().validate_on_submit():
        return _lists(CatalogEntryForm(formdata=None), 400)
    catalog.set_archived(me(), entry, archived)
    flash(_("“%(name)s” archived: records that name it keep it.", name=entry.name)
          if archived else _("“%(name)s” restored.", name=entry.name), "success")
    return redirect(url_for("tenant.records.lists"), 303)


@bp.post("/lists/<int:entry_id>/archive")
@login_required
def list_entry_archive(entry_id: int):
    return _set_archived(entry_id, True)


@bp.post("/lists/<int:entry_id>/restore")
@login_required
def list_entry_restore(entry_id: int):
    return _set_archived(entry_id, False)


# ------------------------------------------------------------------ structured analysis


def _analysis_page(record: NonConformity, form: AnalysisForm, status: int = 200,
                   conflict: list | None = None):
    return render("records/analysis_form.html", status, record=record, form=form,
                  steps=[(form[f"why_{i}"], form[f"because_{i}"])
                         for i in range(1, WHY_STEPS + 1)],
                  branches=[form[name] for name in ISHIKAWA_FIELDS], conflict=conflict)


@bp.route("/records/<int:record_id>/analysis", methods=["GET", "POST"])
@login_required
def record_analysis(record_id: int):
    record = record_or_404(record_id)
    if not visibility.can_edit_record(me(), record):
        abort(403)
    service.ensure_writable(record)
    stored = analysis.current(record)
    form = AnalysisForm(data={k: v or "" for k, v in stored.items()})
    if not form.is_submitted():
        form.version.data = analysis.version(record)
    if form.validate_on_submit():
        posted = {name: form[name].data for name in stored}
        posted["main_cause"] = posted["main_cause"] or None
        try:
            analysis.update_analysis(me(), record, version=form.version.data or "", **posted)
        except service.EditConflict as exc:
            fresh = AnalysisForm(formdata=None, data={
                k: v or "" for k, v in conflicts.merged_data(analysis.current(record), exc,
                                                             {}).items()})
            fresh.version.data = analysis.version(record)
            return _analysis_page(record, fresh, 409, conflicts.announce(fresh, exc, {}))
        except service.RecordError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("tenant.records.show", record_id=record.id), 303)
    return _analysis_page(record, form, 400 if form.is_submitted() else 200)


def show_context(record: NonConformity) -> dict:
    """What the record page shows of the structured analysis."""
    found = analysis.of(record)
    values = analysis.values_of(found)
    return {"analysis": found if found is not None and not analysis.is_empty(values) else None,
            "why_steps": [(values[f"why_{i}"], values[f"because_{i}"])
                          for i in range(1, WHY_STEPS + 1)
                          if values[f"why_{i}"] or values[f"because_{i}"]],
            "ishikawa": [(name.removeprefix("ishikawa_"), values[name])
                         for name in ISHIKAWA_FIELDS if values[name]]}
